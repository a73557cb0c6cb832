"""gunicorn settings shared by `python app.py` and `gunicorn app:app` (via gunicorn.conf.py)."""

from __future__ import annotations

import os

from gunicorn.app.base import BaseApplication
from gunicorn.config import KNOWN_SETTINGS

from . import metrics, settings


def _on_starting(server) -> None:
    metrics.prepare_multiprocess_dir()


def _child_exit(server, worker) -> None:
    metrics.worker_exited(worker.pid)


def _on_exit(server) -> None:
    metrics.remove_multiprocess_dir()


def _post_worker_init(worker) -> None:
    """A (re)started worker re-reads the config tree at once: SIGHUP means 'reload now'."""
    store = getattr(worker.wsgi, "extensions", {}).get("fidesmail.store")
    if store is not None:
        store.reload(reuse=True)  # unchanged files: keep the master's snapshot, shared copy-on-write


def gunicorn_options(environ=None) -> dict:
    """Listen address from FIDESMAIL_HOST/PORT; a small pool fit for a sidecar."""
    env = os.environ if environ is None else environ
    config = settings.from_environment(env)
    options = {
        "bind": f"{config['HOST']}:{config['PORT']}",
        "workers": int(env.get("WEB_CONCURRENCY", "2")),
        "worker_class": "gthread",
        "threads": int(env.get("FIDESMAIL_THREADS", "4")),
        "graceful_timeout": 5,  # SIGTERM -> exit well within 10 s
        "timeout": 60,
        "post_worker_init": _post_worker_init,
        "on_starting": _on_starting,
        "child_exit": _child_exit,
        "on_exit": _on_exit,
    }
    if os.path.isdir("/dev/shm"):
        options["worker_tmp_dir"] = "/dev/shm"  # heartbeat files off the disk; works on a read-only root
    if any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS):
        options["control_socket_disable"] = True  # gunicorn 24+: no socket in $HOME to manage
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


def serve(create_app) -> None:
    """Build the app once (before the fork, so workers share it) and serve it until SIGTERM/SIGINT."""
    metrics.prepare_multiprocess_dir()  # before create_app imports prometheus_client
    _Server(create_app(), gunicorn_options()).run()
