"""Structured logs: one JSON object per line, gunicorn's own lines included, a request id on every request's lines."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

log = logging.getLogger("fidesmail.request")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")


class JSONFormatter(JsonFormatter):
    """A log record as one JSON line: ts, level, logger, msg, then any `extra` fields."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger", "message": "msg",
                                            "exc_info": "exc"})
        kwargs.setdefault("json_ensure_ascii", False)
        kwargs.setdefault("json_default", str)
        super().__init__("{levelname}{name}{message}", *args, style="{", **kwargs)

    def add_fields(self, log_data, record, message_dict) -> None:
        log_data["ts"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        super().add_fields(log_data, record, message_dict)


class _RequestIdFilter(logging.Filter):
    """Stamp every record made while serving a request with that request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context() and "request_id" in g and not hasattr(record, "request_id"):
            record.request_id = g.request_id
        return True


def mask_address(address: str) -> str:
    """s***@example.com: enough to tell recipients apart in a log, not enough to mail them."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}" if local else "***"


def configure() -> None:
    """JSON lines on stderr, unless the host (pytest, an embedding app) already set logging up."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JSONFormatter())
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    for handler in root.handlers:
        if not any(isinstance(f, _RequestIdFilter) for f in handler.filters):
            handler.addFilter(_RequestIdFilter())
    logging.getLogger("fidesmail").setLevel(logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # fidesmail logs each migration in one line itself


def gunicorn_logconfig() -> dict:
    """gunicorn's logging as dictConfig: its own lines ("Starting gunicorn", "Booting worker") as the same
    JSON on stderr; no access log, since the app logs one line per request itself."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JSONFormatter}},
        "filters": {"request_id": {"()": _RequestIdFilter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr",
                                "filters": ["request_id"]}},
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }


def init_app(app: Flask, on_request=None) -> None:
    """Give each request an id (X-Request-ID when sent), answer it back, log one line per request."""

    @app.before_request
    def _start():
        sent = request.headers.get("X-Request-ID", "")
        g.request_id = sent if _REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response):
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers["X-Request-ID"] = request_id
        duration = time.perf_counter() - g.get("started", time.perf_counter())
        log.info("%s %s %s", request.method, request.path, response.status_code,
                 extra={"method": request.method, "path": request.path, "status": response.status_code,
                        "duration_ms": round(duration * 1000, 3), "request_id": request_id})
        if on_request is not None:
            on_request(request.url_rule.rule if request.url_rule else "unmatched", request.method,
                       response.status_code, duration)
        return response
