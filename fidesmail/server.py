"""Serving: `python app.py [--host H] [--port P] [--workers N]` and `gunicorn app:app` share these settings."""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys

from gunicorn.app.base import BaseApplication
from gunicorn.config import KNOWN_SETTINGS

from . import logs, metrics, settings, startup


def _on_starting(server) -> None:
    metrics.prepare_multiprocess_dir()


def _child_exit(server, worker) -> None:
    metrics.worker_exited(worker.pid)


def _on_exit(server) -> None:
    metrics.remove_multiprocess_dir()


def _post_worker_init(worker) -> None:
    """A (re)started worker: prepare unless the master did, then start its background threads."""
    app = getattr(worker, "wsgi", None)
    if app is not None and hasattr(app, "extensions"):
        startup.start_in_worker(app)


def _worker_exit(server, worker) -> None:
    """In the worker, as it exits: stop claiming queued messages, finish the posts in flight."""
    app = getattr(worker, "wsgi", None)
    if app is not None and hasattr(app, "extensions"):
        startup.stop_in_worker(app)


def gunicorn_options(config: dict) -> dict:
    """gunicorn's settings from ours: the listen address, a small pool fit for a sidecar, JSON logs."""
    options = {
        "bind": f"{config['HOST']}:{config['PORT']}",
        "workers": config["WORKERS"],
        "worker_class": "gthread",
        "threads": config["THREADS"],
        "graceful_timeout": 5,  # SIGTERM -> exit well within 10 s
        "timeout": 60,
        "post_worker_init": _post_worker_init,
        "worker_exit": _worker_exit,
        "on_starting": _on_starting,
        "child_exit": _child_exit,
        "on_exit": _on_exit,
        "logconfig_dict": logs.gunicorn_logconfig(),
        "accesslog": None,
        "worker_tmp_dir": "/dev/shm",  # heartbeat files off the disk; works on a read-only root
    }
    if any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS):
        options["control_socket_disable"] = True  # gunicorn 24+: no socket in $HOME to manage
    if not os.path.isdir("/dev/shm"):
        del options["worker_tmp_dir"]
    return options


class _Server(BaseApplication):
    """gunicorn serving an app object that already exists (loaded once, before the fork)."""

    def __init__(self, app, options):
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self):
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self):
        return self.application


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python app.py",
        description="Serve fidesmail under gunicorn until SIGTERM or Ctrl-C.",
        epilog="Settings, all optional, from the environment:\n" + settings.describe(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="listen address for this run (instead of FIDESMAIL_HOST)")
    parser.add_argument("--port", help="listen port for this run (instead of FIDESMAIL_PORT)")
    parser.add_argument("--workers", help="worker processes for this run (instead of WEB_CONCURRENCY)")
    return parser.parse_args(argv)


def configured(argv: list[str] | None = None, environ=None) -> dict:
    """The settings, with the command line's overrides; SettingsError naming what cannot be used."""
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    config = settings.from_environment(environ)
    if args.host is not None:
        config["HOST"] = settings.parse_as("HOST", args.host, "--host")
    if args.port is not None:
        config["PORT"] = settings.parse_as("PORT", args.port, "--port")
    if args.workers is not None:
        config["WORKERS"] = settings.parse_as("WORKERS", args.workers, "--workers")
    _check_port_free(config["HOST"], config["PORT"], "--port" if args.port is not None else "FIDESMAIL_PORT")
    return config


def _check_port_free(host: str, port: int, named: str) -> None:
    """Fail now, in one line, if the address is taken (gunicorn would retry for 5 s, then print a traceback)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise settings.SettingsError(f"{named}: port {port} on {host} is already in use by another program; "
                                             f"choose another one (e.g. FIDESMAIL_PORT={port + 1} or --port "
                                             f"{port + 1})") from None
            raise settings.SettingsError(f"FIDESMAIL_HOST: cannot listen on {host}:{port}: {exc.strerror}") \
                from None


def serve(create_app, argv: list[str] | None = None) -> None:
    """Build the app once (before the fork, so workers share it) and serve it until SIGTERM/SIGINT."""
    try:
        config = configured(argv)
    except settings.SettingsError as exc:
        print(f"fidesmail: cannot start: {exc}", file=sys.stderr)
        sys.exit(1)
    metrics.prepare_multiprocess_dir()  # before create_app imports prometheus_client
    overrides = {key: config[key] for key in ("HOST", "PORT", "WORKERS")}
    app = create_app(overrides)
    startup.prepare(app)
    _Server(app, gunicorn_options(app.config)).run()
