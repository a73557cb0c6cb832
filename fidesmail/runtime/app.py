"""The app factory: every blueprint, error handler and command on one Flask app, and its long-lived objects."""


from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from fidesmail.providers import catalog
from fidesmail.runtime import logs, services, settings
from fidesmail.web import auth, docs, errors
from fidesmail.web.blueprint import PathSegment

MAX_BODY_BYTES = 1024 * 1024
_API_DESCRIPTION = ("Email configs kept as YAML files in git, provider keys sealed, fidesops' and fides' notices "
                    "sent through Mailgun, Amazon SES, Twilio SendGrid or Mailchimp Transactional. Compatible with "
                    "fidesops' /api/v1/email/config API, and with fides' /api/v1/messaging API (its configs, defaults, "
                    "secrets, test and templates; fides' scopes, fides' validation words).")


class _Api(Api):
    """flask-smorest's Api, with every error in the contract's {"detail": ...} shape."""

    ERROR_SCHEMA = errors.ErrorSchema

    def handle_http_exception(self, error):
        return errors.handle_http_exception(error)


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app from FIDESMAIL_* settings, with `overrides` (tests) taking precedence; writes nothing.

    SettingsError for a setting that cannot be used, and where there is no config tree (the wrong folder)
    unless the caller names the tree itself (`overrides`)."""
    config = settings.from_environment()
    if "CONFIG_DIR" not in (overrides or {}):
        settings.require_config_dir(config)
    config.update(overrides or {})
    app = Flask("fidesmail", instance_path=str(config["INSTANCE_DIR"]), instance_relative_config=False)
    # Every path also answers with a trailing slash, as fidesops (FastAPI) did and its clients rely
    # on (its Postman collection posts to /email/config/): answered by the same route, not
    # redirected, so method and body are kept and OpenAPI lists each path once. Set before any
    # route is added: a rule takes the map's setting when it is bound.
    app.url_map.strict_slashes = False
    # A NUL character in a path parameter is a 404 for every route (contract section 4), whatever the database.
    app.url_map.converters.update(default=PathSegment, string=PathSegment)
    app.config.update(config)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        API_TITLE="fidesmail",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
    )
    app.config.update(docs.SETTINGS)
    app.json.sort_keys = False
    logs.configure(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    found = services.build(app.config)
    services.attach(app, found)
    logs.init_app(app, on_request=found.metrics.observe_request)

    api = _Api(app, spec_kwargs={"info": {"description": _API_DESCRIPTION}})
    api.spec.components.schema("Problem", schema=errors.ProblemSchema)
    for kind in catalog.KINDS.values():  # a config's `details`: any provider's (catalog.details_refs)
        api.spec.components.schema(kind.details_schema.__name__.removesuffix("Schema"), schema=kind.details_schema)
    api.spec.components.security_scheme("bearerAuth", {
        "type": "http", "scheme": "bearer",
        "description": "A token from `flask token create --scope SCOPE`; each operation names the scope it needs "
                       "(x-required-scope). Scopes: " + ", ".join(auth.SCOPES) + ".",
    })
    from fidesmail.web import (
        cancel,
        configs,
        evidence,
        health,
        messages,
        messaging_configs,
        messaging_defaults,
        messaging_secrets,
        messaging_templates,
        secrets,
        send,
        webhooks,
    )

    # evidence before messages: /messages/evidence is a path of its own, not a message id.
    for blueprint in (health.blp, configs.blp, secrets.blp, send.blp, evidence.blp, messages.blp, cancel.blp,
                      webhooks.blp, messaging_templates.blp, messaging_configs.blp, messaging_secrets.blp,
                      messaging_defaults.blp):
        api.register_blueprint(blueprint)
    errors.register(app)
    docs.register(app)

    from fidesmail.cli import commands as cli
    from fidesmail.cli import events as event_commands
    from fidesmail.cli import evidence as evidence_commands
    from fidesmail.cli.db import db_group

    cli.register(app)
    app.cli.add_command(db_group)
    event_commands.register(app)
    evidence_commands.register(app)
    return app
