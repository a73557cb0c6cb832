"""Serving: `python app.py [--host H] [--port P] [--workers N]` and `gunicorn app:app` share these settings."""

from __future__ import annotations

import argparse
import errno
import gc
import os
import socket
import sys

from fidesmail.runtime import logs, metrics, settings, startup

# gunicorn is imported only once the settings are checked: importing it reads WEB_CONCURRENCY and
# ends in a traceback when that is not a number.


def _on_starting(server) -> None:
    metrics.prepare_multiprocess_dir()


def _child_exit(server, worker) -> None:
    metrics.worker_exited(worker.pid)


def _on_exit(server) -> None:
    metrics.remove_multiprocess_dir()


def freeze_shared_state() -> None:
    """Before the fork: move everything loaded so far out of the garbage collector's reach, so the
    workers' collections do not touch (and so copy) the pages of the snapshot they share with the master."""
    gc.collect()
    gc.freeze()


def _when_ready(server) -> None:
    """In the master, once the app is loaded (preloaded): prepare it there, so every worker forks with
    the keys made, the schema migrated and the tree loaded, and shares that memory."""
    app = server.app.wsgi()
    if hasattr(app, "extensions"):
        startup.prepare(app)
        freeze_shared_state()


def _on_reload(server) -> None:
    """SIGHUP, in the master, before it forks the new workers: look at the tree now, so they start with
    what is on disk and share it (no worker re-reads it at its start)."""
    app = server.app.wsgi()
    if hasattr(app, "extensions") and app.extensions.get("fidesmail.prepared"):
        startup.reload_in_master(app)
        freeze_shared_state()


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
    from gunicorn.config import KNOWN_SETTINGS

    options = {
        "bind": f"{config['HOST']}:{config['PORT']}",
        "workers": config["WORKERS"],
        "worker_class": "gthread",
        "threads": config["THREADS"],
        "graceful_timeout": 5,  # SIGTERM -> exit well within 10 s
        "timeout": 60,
        "preload_app": True,  # `gunicorn app:app` too: the app is built once in the master, then shared
        "when_ready": _when_ready,
        "on_reload": _on_reload,
        "post_worker_init": _post_worker_init,
        "worker_exit": _worker_exit,
        "on_starting": _on_starting,
        "child_exit": _child_exit,
        "on_exit": _on_exit,
        "logconfig_dict": logs.gunicorn_logconfig(config["LOG_LEVEL"], config["LOG_FORMAT"]),
        "accesslog": None,
        "worker_tmp_dir": "/dev/shm",  # heartbeat files off the disk; works on a read-only root
    }
    if any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS):
        options["control_socket_disable"] = True  # gunicorn 24+: no socket in $HOME to manage
    if not os.path.isdir("/dev/shm"):
        del options["worker_tmp_dir"]
    return options


class _Server:
    """gunicorn serving an app object that already exists (loaded once, before the fork)."""

    def __init__(self, app, options: dict):
        self.app, self.options = app, options

    def run(self) -> None:
        from gunicorn.app.base import BaseApplication

        app, options = self.app, self.options

        class Application(BaseApplication):
            def load_config(self):
                for name, value in options.items():
                    self.cfg.set(name, value)

            def load(self):
                return app

        Application().run()


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
    _check_port_free(config["HOST"], config["PORT"], "--port" if args.port is not None else "FIDESMAIL_PORT",
                     "--host" if args.host is not None else "FIDESMAIL_HOST",
                     f"FIDESMAIL_PORT={config['PORT'] + 1} or --port {config['PORT'] + 1}")
    return config


def _check_port_free(host: str, port: int, port_name: str, host_name: str, instead: str) -> None:
    """Fail now, in one line, if the address is taken (gunicorn would retry for 5 s, then print a traceback)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise settings.SettingsError(f"{port_name}: port {port} on {host} is already in use by another "
                                             f"program; choose another one (e.g. {instead})") from None
            raise settings.SettingsError(f"{host_name}: cannot listen on {host}:{port}: "
                                         f"{exc.strerror or exc}") from None


def on_starting_checked(server) -> None:
    """`gunicorn app:app`'s on_starting: a taken port ends the start in one line, as `python app.py` does."""
    inherited = os.environ.get("LISTEN_FDS") or os.environ.get("GUNICORN_FD")  # systemd, or a USR2 re-exec
    if not inherited and not server.cfg.reuse_port:
        ours = settings.from_environment()
        for address in server.cfg.address:
            if not isinstance(address, tuple):
                continue  # a unix socket
            host, port = address[0], address[1]
            from_settings = (host, port) == (ours["HOST"], ours["PORT"])
            try:
                _check_port_free(host, port, "FIDESMAIL_PORT" if from_settings else "gunicorn's --bind",
                                 "FIDESMAIL_HOST" if from_settings else "gunicorn's --bind",
                                 f"FIDESMAIL_PORT={port + 1}" if from_settings else f"--bind {host}:{port + 1}")
            except settings.SettingsError as exc:
                print(f"fidesmail: cannot start: {exc}", file=sys.stderr)
                sys.exit(1)
    _on_starting(server)


def serve(create_app, argv: list[str] | None = None) -> None:
    """Build the app once (before the fork, so workers share it) and serve it until SIGTERM/SIGINT."""
    try:
        config = configured(argv)
        settings.require_config_dir(config)  # the wrong folder: stop, never serve an empty tree with new keys
    except settings.SettingsError as exc:
        print(f"fidesmail: cannot start: {exc}", file=sys.stderr)
        sys.exit(1)
    metrics.prepare_multiprocess_dir()  # before create_app imports prometheus_client
    overrides = {key: config[key] for key in ("HOST", "PORT", "WORKERS")}
    app = create_app(overrides)
    startup.prepare(app)
    freeze_shared_state()
    _Server(app, gunicorn_options(app.config)).run()
