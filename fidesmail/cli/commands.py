"""`flask check`, `flask token create` and `flask secrets ...`: the operator's commands.

None of them writes anything it is not asked to: `check` writes nothing anywhere, `secrets seal`
writes only `secrets.sealed.yaml`, `token create` may create the signing key file, and `secrets
rotate` writes the keyring, the sealed file and the new `seal.pub`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from marshmallow import ValidationError

from fidesmail.core import fsutil
from fidesmail.core.problems import Problem
from fidesmail.providers import catalog
from fidesmail.sealing import envelope, keys, rotation, vault
from fidesmail.tree import loader
from fidesmail.web import auth, context


def _display(path: Path) -> str:
    """A path as the user will want to open it: relative to the working dir when under it."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def check_tree(config_dir: Path, keyring_path: Path) -> tuple[list[Problem], int, list[str]]:
    """Every problem of the tree, as the server's own loader sees it, plus what the keys can prove.

    Returns (problems, configs loaded, notes for the person running it)."""
    snapshot = loader.load_tree(config_dir)  # a fresh load: no last good versions to hide behind
    problems = list(snapshot.problems)
    notes = []
    if keyring_path.exists():
        try:
            keyring = keys.load_keyring(keyring_path)
        except keys.KeyringError as exc:
            problems.append(Problem(loader.SEALED_FILE, 1, f"cannot check that values open: {exc}"))
        else:
            problems += vault.check_opens(snapshot.sealed, keyring, loader.SEALED_FILE)
            mismatch = keys.mismatch(snapshot.public_key_id, keyring)
            if mismatch:
                problems.append(Problem(loader.PUBLIC_KEY_FILE, 1, mismatch))
    elif snapshot.public_key_id is not None:
        problems += vault.check_sealed_to(snapshot.sealed, snapshot.public_key_id, loader.SEALED_FILE)
        if snapshot.sealed.entries:
            notes.append(f"no private key at {_display(keyring_path)}: checked that every value is sealed to "
                         f"seal.pub's key {snapshot.public_key_id}, but could not prove the values open")
    return sorted(set(problems)), len(snapshot.keys), notes


@click.command("check")
@with_appcontext
def check_command():
    """Validate the whole config tree; print path:line: message per problem; exit 1 on any. Writes nothing."""
    config_dir = Path(current_app.config["CONFIG_DIR"])
    problems, configs, notes = check_tree(config_dir, Path(current_app.config["SEAL_KEY_FILE"]))
    for problem in problems:
        click.echo(f"{_display(config_dir / problem.path)}:{problem.line}: {problem.message}")
    for note in notes:
        click.echo(f"note: {note}", err=True)
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
    config = current_app.config
    if not config["SECRET_KEYS"]:
        auth.ensure_key_file(config["INSTANCE_DIR"])  # the same key the service will use
    click.echo(auth.create_token(auth.signing_keys(config), scopes, ttl))


secrets_group = AppGroup("secrets", help="Sealed secrets in the config tree.")


def _read_value(config_key: str, field: str) -> str:
    if sys.stdin.isatty():  # typed by a person: no echo, nothing in the shell history
        value = click.prompt(f"{field} for {config_key}", hide_input=True)
    else:
        value = sys.stdin.read().rstrip("\r\n")
    if not vault.is_usable(value):
        raise click.ClickException("the value must be a non-empty line of printable ASCII characters")
    return value


def _check_value(service_type: str, field: str, value: str) -> None:
    """The value as PUT /secret would judge it alone (e.g. SES' auth_method is automatic or secret_keys)."""
    try:
        catalog.secrets_schema(service_type).fields[field].deserialize(value)
    except ValidationError as exc:
        raise click.ClickException(f"{field}: {' '.join(map(str, exc.messages))}") from None


@secrets_group.command("seal")
@click.argument("config_key")
@click.argument("field", type=click.Choice(catalog.SECRET_FIELDS))
def seal_command(config_key, field):
    """Seal the value read from stdin with seal.pub alone, into secrets.sealed.yaml (nothing else is written)."""
    store = context.current().store
    if not loader.KEY_PATTERN.fullmatch(config_key):
        raise click.BadParameter("not a valid config key", param_hint="CONFIG_KEY")
    snapshot = loader.load_tree(store.config_dir)
    if snapshot.public_key is None:
        raise click.ClickException(f"there is no usable {_display(store.public_key_path)}: sealing needs the "
                                   "team's public key (commit it to the config tree)")
    if snapshot.sealed_file_problem is not None:
        raise click.ClickException(f"{loader.SEALED_FILE} has problems ({snapshot.sealed_file_problem}); "
                                   "fix them first (flask check lists them)")
    entry = snapshot.configs.get(config_key)
    service_type = entry.document["service_type"] if entry is not None else None
    if service_type is not None and field not in catalog.KINDS[service_type].secret_fields:
        raise click.ClickException(f"{config_key} is a {service_type} config: its secret fields are "
                                   f"{', '.join(catalog.KINDS[service_type].secret_fields)}")
    value = _read_value(config_key, field)
    if service_type is not None:
        _check_value(service_type, field, value)
    sealed_value = envelope.seal(snapshot.public_key, config_key, field, value)

    def save(current):
        store.save_sealed(current.sealed.with_value(config_key, field, sealed_value))

    _, written = store.write(save, create_lock=False)
    if config_key not in written.configs:
        click.echo(f"warning: there is no config {config_key!r} (yet)", err=True)
    click.echo(f"sealed {config_key}/{field} into {_display(store.sealed_path)} "
               f"for key {snapshot.public_key_id} (seal.pub)", err=True)


@secrets_group.command("rotate")
@click.option("--drop-old", is_flag=True,
              help="Only remove old private keys no sealed value uses any more (no new rotation).")
def rotate_command(drop_old):
    """Re-seal every value under a new key pair; write the keyring, secrets.sealed.yaml and the new seal.pub."""
    found = context.current()
    store, keyring_path = found.store, found.vault.keyring_path
    try:
        keyring = found.vault.keyring()
    except keys.KeyringError as exc:
        raise click.ClickException(str(exc)) from None

    def rotate(snapshot):
        if snapshot.sealed_file_problem is not None:
            raise click.ClickException("secrets.sealed.yaml has problems; run `flask check` and fix them first")
        if drop_old:
            kept = rotation.drop_unused(snapshot.sealed, keyring)
            fsutil.atomic_write(keyring_path, keys.dump_keyring(kept), 0o600)
            return snapshot.sealed, kept
        try:
            resealed, new_keyring = rotation.rotate(snapshot.sealed, keyring)
        except envelope.SealError as exc:
            raise click.ClickException(f"nothing changed: {exc}") from None
        # The keyring first: a crash after it leaves old values that the kept old keys still open.
        fsutil.atomic_write(keyring_path, keys.dump_keyring(new_keyring), 0o600)
        store.save_sealed(resealed)
        fsutil.atomic_write(store.public_key_path, keys.dump_public_key(new_keyring[0].public_key))
        return resealed, new_keyring

    (resealed, new_keyring), _ = store.write(rotate, create_lock=False)
    if drop_old:
        dropped = len(keyring) - len(new_keyring)
        click.echo(f"dropped {dropped} old key(s) no value uses; {len(new_keyring)} key(s) left, newest "
                   f"{new_keyring[0].key_id}", err=True)
        return
    count = sum(1 for _ in resealed.places())
    click.echo(f"re-sealed {count} value(s) under key {new_keyring[0].key_id}; {len(new_keyring) - 1} old key(s) "
               "kept (drop the unused ones with --drop-old)", err=True)


def register(app: Flask) -> None:
    """Add the commands to `flask`."""
    for command in (check_command, token_group, secrets_group):
        app.cli.add_command(command)
