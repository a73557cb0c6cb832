"""`flask db upgrade` and `flask db current`: the records schema, for operators."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from fidesmail.core.exceptions import Unavailable
from fidesmail.web import context

db_group = AppGroup("db", help="The message records database (FIDESMAIL_DATABASE_URL).")


@db_group.command("upgrade")
def upgrade_command():
    """Create or migrate the schema to the newest revision (the service also does this at start)."""
    database = context.current().database
    try:
        database.upgrade()
        click.echo(f"{database.safe_url}: at revision {database.current()}", err=True)
    except Unavailable as exc:
        raise click.ClickException(exc.detail) from None


@db_group.command("current")
def current_command():
    """Print the schema revision of the database ('none' before the first upgrade)."""
    try:
        click.echo(context.current().database.current() or "none")
    except Unavailable as exc:
        raise click.ClickException(exc.detail) from None
