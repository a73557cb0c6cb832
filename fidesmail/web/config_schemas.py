"""What the config endpoints answer and take in the query string (their documentation, and paging)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from fidesmail.providers import catalog


class ConfigOutSchema(Schema):
    """A config as answered by the API."""

    key = fields.String(required=True)
    name = fields.String(required=True)
    service_type = fields.String(required=True)
    details = fields.Dict(required=True, metadata={"anyOf": catalog.details_refs(),
                                                   "description": "As its service_type says (contract section 13)"})
    fallback = fields.String(metadata={"description": "The config a message goes to when this one's provider "
                                                      "proves it did not take it (contract section 14); absent: none"})
    callback = fields.Dict(metadata={"description": "{\"url\": ...}: where status changes of its messages are "
                                                    "POSTed (absent: none)"})
    rate_limit = fields.Float(metadata={"description": "Messages per second to the provider (absent: no limit)"})
    secrets_set = fields.Boolean(required=True)


class ConfigPageSchema(Schema):
    """One page of configs, ordered by key."""

    items = fields.List(fields.Nested(ConfigOutSchema), required=True)
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    size = fields.Integer(required=True)


class PageArgsSchema(Schema):
    """?page=&size= of the list endpoint."""

    class Meta:
        unknown = RAISE

    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    size = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
