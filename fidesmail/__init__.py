"""fidesmail: email configs as files in git, Mailgun keys sealed, notices sent through Mailgun."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask
from flask_smorest import Api

from . import auth, errors, logs, sealed, settings
from .idempotency import Ledger
from .metrics import Metrics
from .store import Store
from .vault import Vault

log = logging.getLogger("fidesmail")

MAX_BODY_BYTES = 1024 * 1024
_API_DESCRIPTION = ("Email configs kept as YAML files in git, Mailgun keys sealed, fidesops' notices sent "
                    "through Mailgun. Compatible with fidesops' /api/v1/email/config API.")


class _Api(Api):
    """flask-smorest's Api, with every error in the contract's {"detail": ...} shape."""

    ERROR_SCHEMA = errors.ErrorSchema

    def handle_http_exception(self, error):
        return errors.handle_http_exception(error)


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app from FIDESMAIL_* settings, with `overrides` (tests) taking precedence."""
    config = settings.from_environment()
    config.update(overrides or {})
    app = Flask(__name__, instance_path=str(config["INSTANCE_DIR"]), instance_relative_config=False)
    # Every path also answers with a trailing slash, as fidesops (FastAPI) did and its clients rely
    # on (its Postman collection posts to /email/config/): answered by the same route, not
    # redirected, so method and body are kept and OpenAPI lists each path once. Set before any
    # route is added: a rule takes the map's setting when it is bound.
    app.url_map.strict_slashes = False
    app.config.update(config)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        API_TITLE="fidesmail",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
    )
    app.json.sort_keys = False
    logs.configure()
    app.extensions["fidesmail.metrics"] = metrics = Metrics()
    logs.init_app(app, on_request=metrics.observe_request)

    store = Store(config["CONFIG_DIR"], config["INSTANCE_DIR"], read_only=config["READ_ONLY"],
                  watch_interval=config["WATCH_INTERVAL"])
    store.on_install = metrics.observe_reload
    store.prepare()
    app.config["SECRET_KEYS"] = auth.resolve_secret_keys(config["SECRET_KEYS"], config["INSTANCE_DIR"])
    sealed.ensure_keys(config["SEAL_KEY_FILE"], store.public_key_path, log)
    app.extensions["fidesmail.store"] = store
    app.extensions["fidesmail.vault"] = Vault(config["SEAL_KEY_FILE"])
    app.extensions["fidesmail.ledger"] = Ledger(Path(config["INSTANCE_DIR"]) / "idempotency")

    api = _Api(app, spec_kwargs={"info": {"description": _API_DESCRIPTION}})
    api.spec.components.schema("Problem", schema=errors.ProblemSchema)
    api.spec.components.security_scheme("bearerAuth", {
        "type": "http", "scheme": "bearer",
        "description": "A token from `flask token create --scope SCOPE`; each operation names the scope it needs "
                       "(x-required-scope). Scopes: " + ", ".join(auth.SCOPES) + ".",
    })
    from .api import configs, health, secrets, send

    for blueprint in (health.blp, configs.blp, secrets.blp, send.blp):
        api.register_blueprint(blueprint)
    errors.register(app)
    auth.protect_endpoint(app, "api-docs.openapi_json", auth.READ)

    from . import cli

    cli.register(app)
    return app

