"""The log: one JSON object per line (or plain text: FIDESMAIL_LOG_FORMAT), gunicorn's own lines included, a
request id on every request's lines, at FIDESMAIL_LOG_LEVEL."""

from __future__ import annotations

import json
import logging
import random
import re
import time

from flask import Flask, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

log = logging.getLogger("fidesmail.request")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
REQUEST_ID = "fidesmail.request_id"  # WSGI environ keys set by RequestStamp
STARTED = "fidesmail.started"


_second: tuple[int, str] = (-1, "")  # the last whole second written, replaced whole (threads share it)


def _timestamp(created: float, msecs: float) -> str:
    """2026-12-01T08:00:00.123Z"""
    global _second
    whole = int(created)
    second, text = _second
    if whole != second:  # strftime once a second, not once a line (it was a tenth of a request line's cost)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = (whole, text)
    return f"{text}.{int(msecs):03d}Z"


# One encoder made once: json.dumps with these options builds a new one on every call.
_encode_line = json.JSONEncoder(ensure_ascii=False, default=str).encode


class JSONFormatter(JsonFormatter):
    """A log record as one JSON line: ts, level, logger, msg, then any `extra` fields."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger", "message": "msg",
                                            "exc_info": "exc"})
        kwargs.setdefault("json_ensure_ascii", False)
        kwargs.setdefault("json_default", str)
        super().__init__("{levelname}{name}{message}", *args, style="{", **kwargs)

    def add_fields(self, log_data, record, message_dict) -> None:
        log_data["ts"] = _timestamp(record.created, record.msecs)
        super().add_fields(log_data, record, message_dict)

    def format(self, record: logging.LogRecord) -> str:
        # The one line per request carries its fields ready-made (`extra={"fields": ...}`): written in one
        # json.dumps, without the generic walk over the record's attributes (most of a request's log cost).
        fields = record.__dict__.get("fields")
        if type(fields) is dict and not record.exc_info:
            line = {"ts": _timestamp(record.created, record.msecs), "level": record.levelname,
                    "logger": record.name, "msg": record.getMessage(), **fields}
            return _encode_line(line)
        return super().format(record)


class TextFormatter(logging.Formatter):
    """A log record as one line of text for people: time, level, logger, message, then key=value fields."""

    _SKIP = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "fields"}

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record.created, record.msecs)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        fields = record.__dict__.get("fields")
        extra = dict(fields) if type(fields) is dict else {}
        extra.update((k, v) for k, v in record.__dict__.items() if k not in self._SKIP)
        if extra:
            line += " " + " ".join(f"{key}={value}" for key, value in extra.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


FORMATTERS = {"json": JSONFormatter, "text": TextFormatter}


class _RequestIdFilter(logging.Filter):
    """Stamp every record made while serving a request with that request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "fields" not in record.__dict__ and not hasattr(record, "request_id") and has_request_context():
            request_id = request.environ.get(REQUEST_ID)
            if request_id is not None:
                record.request_id = request_id
        return True


def configure(level: str = "INFO", form: str = "json") -> None:
    """Lines of `form` on stderr at `level`, unless the host (pytest, an embedding app) already set logging up."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(FORMATTERS[form]())
        root.addHandler(handler)
        root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, _RequestIdFilter) for f in handler.filters):
            handler.addFilter(_RequestIdFilter())
    logging.getLogger("fidesmail").setLevel(level)
    # fidesmail logs each migration in one line itself
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def gunicorn_logconfig(level: str = "INFO", form: str = "json") -> dict:
    """gunicorn's logging as dictConfig: its own lines ("Starting gunicorn", "Booting worker") in the same
    form on stderr; no access log, since the app logs one line per request itself."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {form: {"()": FORMATTERS[form]}},
        "filters": {"request_id": {"()": _RequestIdFilter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": form, "stream": "ext://sys.stderr",
                                "filters": ["request_id"]}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }


class RequestStamp:
    """WSGI middleware: each request's start time and id (X-Request-ID when sent) in its environ, set
    before Flask sees it, and the id answered back as X-Request-ID; cheaper than a before_request hook
    and a Headers assignment, which Flask wraps and dispatches."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        environ[STARTED] = time.perf_counter()
        sent = environ.get("HTTP_X_REQUEST_ID")
        # Not a secret, only unique: the random module (reseeded in each forked worker), not a getrandom call.
        request_id = environ[REQUEST_ID] = (sent if sent and _REQUEST_ID.fullmatch(sent)
                                            else f"{random.getrandbits(128):032x}")

        def answer_with_id(status, headers, exc_info=None):
            headers.append(("X-Request-ID", request_id))
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, answer_with_id)


def init_app(app: Flask, on_request=None) -> None:
    """Give each request an id (X-Request-ID when sent), answer it back, log one line per request."""
    app.wsgi_app = RequestStamp(app.wsgi_app)

    @app.after_request
    def _finish(response):
        served = request._get_current_object()  # once, not a context lookup for each attribute
        environ = served.environ
        now = time.perf_counter()
        duration = now - environ.get(STARTED, now)  # no stamp: an app whose wsgi_app was replaced whole
        method, path, status = environ["REQUEST_METHOD"], served.path, response.status_code
        log.info(f"{method} {path} {status}", extra={"fields": {
            "method": method, "path": path, "status": status, "duration_ms": round(duration * 1000, 3),
            "request_id": environ.get(REQUEST_ID)}})
        if on_request is not None:
            rule = served.url_rule
            on_request(rule.rule if rule is not None else "unmatched", method, status, duration)
        return response
