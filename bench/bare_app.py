"""The floor: a bare Flask app serving the same config JSON as fidesmail, under the same gunicorn settings.

No auth, no schema, no store: the JSON bodies are built once at start from the same config tree
(FIDESMAIL_CONFIG_DIR), so what is left per request is Flask and gunicorn themselves.
Run: `FIDESMAIL_CONFIG_DIR=... FIDESMAIL_PORT=... python bench/bare_app.py`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from flask import Flask, Response, abort, request  # noqa: E402

from fidesmail.runtime import server, settings  # noqa: E402

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_bodies(config_dir: Path) -> dict[str, bytes]:
    """key -> the JSON body of GET /api/v1/email/config/{key}, in key order."""
    sealed_path = config_dir / "secrets.sealed.yaml"
    secrets = {}
    if sealed_path.exists():
        secrets = (yaml.load(sealed_path.read_bytes(), Loader=_Loader) or {}).get("secrets") or {}
    bodies = {}
    for path in sorted((config_dir / "email").glob("*.yaml")):
        doc = yaml.load(path.read_bytes(), Loader=_Loader)
        doc["secrets_set"] = "mailgun_api_key" in (secrets.get(doc["key"]) or {})
        bodies[doc["key"]] = json.dumps(doc, separators=(",", ":")).encode()
    return dict(sorted(bodies.items()))


def create_app(config_dir: Path) -> Flask:
    app = Flask(__name__)
    bodies = load_bodies(config_dir)
    keys = list(bodies)

    @app.get("/health")
    def health():
        return {"status": "healthy", "configs_loaded": len(keys)}

    @app.get("/api/v1/email/config/<key>")
    def get_one(key):
        body = bodies.get(key)
        if body is None:
            abort(404)
        return Response(body, mimetype="application/json")

    @app.get("/api/v1/email/config")
    def get_page():
        page = request.args.get("page", 1, type=int)
        size = request.args.get("size", 50, type=int)
        start = (page - 1) * size
        body = b'{"items":[' + b",".join(bodies[k] for k in keys[start:start + size]) + \
            b'],"total":%d,"page":%d,"size":%d}' % (len(keys), page, size)
        return Response(body, mimetype="application/json")

    return app


app = create_app(Path(os.environ.get("FIDESMAIL_CONFIG_DIR", "config")))


def serve(flask_app: Flask) -> None:
    """gunicorn with fidesmail's own settings (bind, workers, threads, worker class, timeouts), minus its hooks."""
    options = {name: value for name, value in server.gunicorn_options(settings.from_environment()).items()
               if not callable(value)}
    server._Server(flask_app, options).run()


if __name__ == "__main__":
    serve(app)
