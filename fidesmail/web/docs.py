"""`GET /docs`: Swagger UI for `/openapi.json`, public, its assets served from a PyPI package (no CDN)."""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Flask, abort, send_from_directory

# flask-swagger-ui ships swagger-ui's dist files and follows its releases; only the files are used,
# the page is flask-smorest's (OPENAPI_SWAGGER_UI_*), so /docs answers without a redirect.
ASSETS_DIR = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
ASSETS_URL = "/docs/assets/"
_ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"})

# For app.config, before flask-smorest's Api is made.
SETTINGS = {
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": ASSETS_URL,
    "OPENAPI_SWAGGER_UI_CONFIG": {
        "validatorUrl": None,  # Swagger UI would otherwise send the document to validator.swagger.io
        "deepLinking": True,
        "displayRequestDuration": True,
    },
}


def _asset(name: str):
    if name not in _ASSETS:
        abort(404)
    return send_from_directory(ASSETS_DIR, name, max_age=24 * 3600)


def register(app: Flask) -> None:
    """Serve Swagger UI's files under ASSETS_URL (the page itself is flask-smorest's)."""
    app.add_url_rule(ASSETS_URL + "<name>", "docs_asset", _asset)
