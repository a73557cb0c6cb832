"""`flask check`, `flask token create` and `flask secrets ...`: the operator's commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from . import auth, fsutil, messages, sealed
from .problems import Problem
from .store import SEALED_FILE, Store
from .vault import Vault


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
    problems = list(snapshot.problems)
    problems += messages.check_overrides(config_dir / "templates")
    keyring_path = Path(current_app.config["SEAL_KEY_FILE"])
    if keyring_path.exists():  # a contributor without the private key can still check structure
        try:
            problems += sealed.check_opens(snapshot.sealed, Vault(keyring_path).keyring(), SEALED_FILE)
        except sealed.KeyringError as exc:
            problems.append(Problem(SEALED_FILE, 1, f"cannot check that values open: {exc}"))
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


secrets_group = AppGroup("secrets", help="Sealed secrets in the config tree.")


def _app_store() -> Store:
    return current_app.extensions["fidesmail.store"]


@secrets_group.command("seal")
@click.argument("config_key")
@click.argument("field", type=click.Choice(sealed.SECRET_FIELDS))
def seal_command(config_key, field):
    """Seal the value read from stdin with seal.pub alone, into secrets.sealed.yaml."""
    store = _app_store()
    if not sealed.CONFIG_KEY_RE.fullmatch(config_key):
        raise click.BadParameter("not a valid config key", param_hint="CONFIG_KEY")
    try:
        public_key = sealed.load_public_key(store.public_key_path)
    except sealed.KeyringError as exc:
        raise click.ClickException(str(exc)) from None
    if sys.stdin.isatty():  # typed by a person: no echo, nothing in the shell history
        value = click.prompt(f"{field} for {config_key}", hide_input=True)
    else:
        value = sys.stdin.read().rstrip("\r\n")
    if not value.strip() or not value.isprintable():
        raise click.ClickException("the value must be a non-empty line of printable characters")
    envelope = sealed.seal(public_key, config_key, field, value)
    store.write(lambda snapshot: store.save_sealed(snapshot.sealed.with_value(config_key, field, envelope)))
    if config_key not in store.snapshot().configs:
        click.echo(f"warning: there is no config {config_key!r} (yet)", err=True)
    click.echo(f"sealed {config_key}/{field} into {_display(store.sealed_path)} "
               f"for key {sealed.key_id_of(public_key)}", err=True)


@secrets_group.command("rotate")
@click.option("--drop-old", is_flag=True, help="Also remove the old private keys from the keyring.")
def rotate_command(drop_old):
    """Re-seal every value under a new key pair; write the new seal.pub."""
    store = _app_store()
    vault = Vault(current_app.config["SEAL_KEY_FILE"])
    try:
        keyring = vault.keyring()
    except sealed.KeyringError as exc:
        raise click.ClickException(str(exc)) from None

    def rotate(snapshot):
        if not snapshot.ok and any(p.path == SEALED_FILE for p in snapshot.problems):
            raise click.ClickException("secrets.sealed.yaml has problems; run `flask check` and fix them first")
        try:
            resealed, new_keyring = sealed.rotate(snapshot.sealed, keyring)
        except sealed.SealError as exc:
            raise click.ClickException(f"nothing changed: {exc}") from None
        if drop_old:
            new_keyring = sealed.drop_old(new_keyring)
        # The keyring first: a crash after it leaves old values that the kept old keys still open.
        fsutil.atomic_write(vault.keyring_path, sealed.dump_keyring(new_keyring), 0o600)
        store.save_sealed(resealed)
        fsutil.atomic_write(store.public_key_path, sealed.dump_public_key(new_keyring[0].public_key))
        return resealed, new_keyring

    resealed, new_keyring = store.write(rotate)
    count = sum(1 for _ in resealed.places())
    kept = "" if drop_old else f"; {len(new_keyring) - 1} old key(s) kept (drop them with --drop-old)"
    click.echo(f"re-sealed {count} value(s) under key {new_keyring[0].key_id}{kept}", err=True)


def register(app: Flask) -> None:
    """Add the commands to `flask`."""
    for command in (check_command, token_group, secrets_group):
        app.cli.add_command(command)
