"""`flask messages verify [MESSAGE_ID]` and `flask webhooks register KEY URL`: delivery events, for operators.

`verify` checks the stored evidence again: every stored event's provider signature (events/recheck.py;
exit 1 if any fails). `register` points a config's Mailgun webhooks at fidesmail.
Neither prints a key.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from fidesmail.cli import provider_webhooks
from fidesmail.core.exceptions import Unavailable
from fidesmail.events import recheck
from fidesmail.providers.mailgun import registration
from fidesmail.providers.mailgun import secrets as mailgun_secrets
from fidesmail.providers.mailgun.request import base_url_for
from fidesmail.records.messages import iso
from fidesmail.sealing import envelope, keys
from fidesmail.tree import loader
from fidesmail.web import context

messages_group = AppGroup("messages", help="Message records and their delivery events.")
webhooks_group = AppGroup("webhooks", help="The providers' webhooks (delivery events).")

WEBHOOK_PATH = "/api/v1/email/webhooks/{service_type}/{key}"


@messages_group.command("verify")
@click.argument("message_id", required=False)
def verify_command(message_id):
    """Re-check every stored event's provider signature (or one message's); exit 1 if any fails."""
    found = context.current()
    snapshot = loader.load_tree(Path(current_app.config["CONFIG_DIR"]))
    checked = failed = 0
    try:
        if message_id is not None and (len(message_id) > 32 or found.records.get(message_id) is None):
            raise click.ClickException(f"no message {message_id}")
        for one in recheck.recheck(found, snapshot, message_id):
            checked += 1
            if one.problem is None:
                continue
            failed += 1
            row = one.row
            click.echo(f"{row.message_id}: {row.event} at {iso(row.occurred_at)} ({row.provider}, event "
                       f"{row.event_key[:80]}): {one.problem}")
    except Unavailable as exc:
        raise click.ClickException(exc.detail) from None
    what = f"message {message_id}" if message_id else "all messages"
    click.echo(f"{checked - failed} of {checked} stored event(s) of {what} verified", err=True)
    if failed:
        sys.exit(1)


def webhook_target(url: str, config_key: str, service_type: str = "mailgun") -> str:
    """The URL the provider is to post to: fidesmail's base URL gets the webhook path; any other is used as given."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter("must be an http:// or https:// URL", param_hint="URL")
    path = WEBHOOK_PATH.format(service_type=service_type, key=config_key)
    if parts.path in ("", "/"):
        return url.rstrip("/") + path
    if not parts.path.rstrip("/").endswith(path):
        click.echo(f"warning: the URL does not end with {path}: the provider will post to it as given", err=True)
    return url


@webhooks_group.command("register")
@click.argument("config_key")
@click.argument("url")
@click.option("--dry-run", is_flag=True, help="Print what would be done; send nothing.")
@click.option("--event", "events", multiple=True, type=click.Choice(registration.KNOWN_EVENTS),
              help="A webhook type (repeatable; default: " + ", ".join(registration.DEFAULT_EVENTS) + ").")
def register_command(config_key, url, dry_run, events):
    """Point the config's provider webhooks at URL (fidesmail's base URL, or the full one): Mailgun's (its domain's),
    SendGrid's Event Webhook or Mandrill's (their keys sealed at once); for SES, what to run."""
    config = current_app.config
    snapshot = loader.load_tree(Path(config["CONFIG_DIR"]))
    entry = snapshot.configs.get(config_key)
    if entry is None:
        raise click.ClickException(f"no email config {config_key}")
    if entry.document["service_type"] != "mailgun":
        target = webhook_target(url, config_key, entry.document["service_type"])
        provider_webhooks.register(context.current(), context.current().store, snapshot, entry, target, config,
                                   dry_run)
        return
    details = entry.document["details"]
    domain = details["domain"]
    base = base_url_for(details, config["MAILGUN_BASE_URL"], config["MAILGUN_EU_BASE_URL"])
    target = webhook_target(url, config_key)
    events = tuple(dict.fromkeys(events)) or registration.DEFAULT_EVENTS
    if mailgun_secrets.WEBHOOK_SIGNING_KEY not in entry.secret_fields:
        click.echo(f"warning: {config_key} has no {mailgun_secrets.WEBHOOK_SIGNING_KEY} yet: its webhooks are "
                   "refused (401) until it is set (PUT .../secret, or flask secrets seal)", err=True)
    listing = registration.webhooks_url(base, domain)
    if dry_run:
        click.echo(f"would register the webhooks of {domain} ({', '.join(events)}) to post to {target}:\n"
                   f"  GET  {listing}   (what is registered now)\n"
                   f"  POST {listing}   id=<type> url={target}   for each type without a URL\n"
                   f"  PUT  {listing}/<type>   url=<its URLs> url={target}   for each type with other URLs "
                   "(they are kept)\n"
                   "  nothing for each type that already posts there")
        click.echo("nothing was sent (--dry-run)", err=True)
        return
    try:
        api_key = context.current().vault.open(snapshot.sealed, config_key, mailgun_secrets.API_KEY)
    except (keys.KeyringError, envelope.SealError) as exc:
        raise click.ClickException(f"the Mailgun key of {config_key} cannot be opened: {exc}") from None
    if api_key is None:
        raise click.ClickException(f"{config_key} has no {mailgun_secrets.API_KEY}: set it first")
    registrar = registration.Registrar(base, domain, api_key, timeout=config["MAILGUN_TIMEOUT"])
    try:
        steps = registration.plan(registrar.existing(), target, events)
        for step in steps:
            registrar.apply(step)
            others = len(step.urls) - 1
            done = {registration.CREATE: "created", registration.ADD: f"added (beside {others} other URL(s))",
                    registration.KEEP: "already registered"}[step.action]
            click.echo(f"{step.event}: {done}: {target}")
    except registration.RegistrationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{domain}: {len(steps)} webhook(s) post to {target}", err=True)


def register(app: Flask) -> None:
    """Add the commands to `flask`."""
    app.cli.add_command(messages_group)
    app.cli.add_command(webhooks_group)
