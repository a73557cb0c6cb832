"""`flask check`, `flask token create` and `flask secrets ...`: the operator's commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from . import auth
from .store import Store


def _display(path: Path) -> str:
    """A path as the user will want to open it: relative to the working dir when under it."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)




@click.command("check")
@with_appcontext
def check_command():
    """Validate the whole config tree; print path:line: message per problem; exit 1 on any."""
    config_dir = Path(current_app.config["CONFIG_DIR"])
    # A fresh loader, not the app's: the app would keep last good versions of broken files.
    snapshot = Store(config_dir, current_app.config["INSTANCE_DIR"], watch_interval=0).snapshot()
    problems = snapshot.problems
    for problem in problems:
        click.echo(f"{_display(config_dir / problem.path)}:{problem.line}: {problem.message}")
    configs = len(snapshot.keys)
    if problems:
        click.echo(f"{len(problems)} problem(s) in {_display(config_dir)}", err=True)
        sys.exit(1)
    click.echo(f"{_display(config_dir)}: {configs} config(s), no problems", err=True)


token_group = AppGroup("token", help="API tokens.")


@token_group.command("create")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(auth.SCOPES), help="A scope (repeatable).")
@click.option("--all-scopes", is_flag=True, help="Every scope.")
@click.option("--ttl", type=click.IntRange(min=1), default=auth.DEFAULT_TTL, show_default=True,
              help="Seconds until the token expires.")
def create_token_command(scopes, all_scopes, ttl):
    """Print a signed token carrying the given scopes."""
    if all_scopes:
        scopes = auth.SCOPES
    if not scopes:
        raise click.UsageError("give at least one --scope, or --all-scopes")
    click.echo(auth.create_token(current_app.config["SECRET_KEYS"], scopes, ttl))


def register(app: Flask) -> None:
    """Add the commands to `flask`."""
    app.cli.add_command(check_command)
    app.cli.add_command(token_group)
