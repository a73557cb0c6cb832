"""`flask check`, `flask token create` and `flask secrets ...`: the operator's commands.

None of them writes anything it is not asked to: `check` writes nothing anywhere, `secrets seal`
writes only `secrets.sealed.yaml`, `token create` may create the signing key file, `secrets init`
makes a new keyring and its `seal.pub` (never over existing ones), and `secrets rotate` writes the
keyring, the sealed file and the new `seal.pub`.
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


def _not_a_tree(config_dir: Path, configs: int, has_public_key: bool, allow_empty: bool,
                quiet_otherwise: bool) -> list[Problem]:
    """A tree with no email/ folder, no seal.pub or (unless allowed) no config: a CI check pointed at the wrong
    folder must fail, not pass on nothing. "No config" is not said again where files were refused already."""
    problems = []
    has_email_dir = (config_dir / loader.EMAIL_DIR).is_dir()
    if not has_email_dir:
        problems.append(Problem(loader.EMAIL_DIR, 1, f"there is no {loader.EMAIL_DIR}/ folder: is this the config "
                                                     "tree (FIDESMAIL_CONFIG_DIR)?"))
    if not has_public_key and not (config_dir / loader.PUBLIC_KEY_FILE).exists():
        problems.append(Problem(loader.PUBLIC_KEY_FILE, 1, "there is no seal.pub: commit the service's public "
                                                           "sealing key (flask secrets init makes one)"))
    if configs == 0 and has_email_dir and not allow_empty and not quiet_otherwise:
        problems.append(Problem(loader.EMAIL_DIR, 1, "no config in the tree (--allow-empty accepts that)"))
    return problems


def check_tree(config_dir: Path, keyring_path: Path, *, allow_empty: bool = False
               ) -> tuple[list[Problem], int, list[str]]:
    """Every problem of the tree, as the server's own loader sees it, plus what the keys can prove.

    Returns (problems, configs loaded, notes for the person running it)."""
    snapshot = loader.load_tree(config_dir)  # a fresh load: no last good versions to hide behind
    problems = list(snapshot.problems)
    problems += _not_a_tree(config_dir, len(snapshot.keys), snapshot.public_key_id is not None, allow_empty,
                            quiet_otherwise=bool(problems))
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


def _github_escape(text: str, *, prop: bool = False) -> str:
    """A value as GitHub's workflow commands take it (`%`, CR, LF; and `:` `,` in a property)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def _format_problem(config_dir: Path, problem: Problem, form: str) -> str:
    path = os.path.relpath(config_dir / problem.path) if form == "github" else _display(config_dir / problem.path)
    if form == "github":
        return f"::error file={_github_escape(path, prop=True)},line={problem.line}::{_github_escape(problem.message)}"
    return f"{path}:{problem.line}: {problem.message}"


@click.command("check")
@click.option("--allow-empty", is_flag=True, help="Accept a tree with no config (email/ and seal.pub are still "
                                                  "required).")
@click.option("--format", "form", type=click.Choice(["text", "github"]), default="text", show_default=True,
              help="text: path:line: message; github: GitHub Actions annotations (::error file=F,line=N::...).")
@with_appcontext
def check_command(allow_empty, form):
    """Validate the whole config tree; print one line per problem; exit 1 on any. Writes nothing.

    A tree with no email/ folder, no seal.pub or no config is a problem too, so a check pointed at the wrong
    folder fails."""
    config_dir = Path(current_app.config["CONFIG_DIR"])
    problems, configs, notes = check_tree(config_dir, Path(current_app.config["SEAL_KEY_FILE"]),
                                          allow_empty=allow_empty)
    for problem in problems:
        click.echo(_format_problem(config_dir, problem, form))
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


@secrets_group.command("init")
@click.option("--pub", "pub", type=click.Path(dir_okay=False, allow_dash=True),
              help="Where to write the public key (default: the config tree's seal.pub; - for stdout).")
def init_command(pub):
    """Make a production keyring at FIDESMAIL_SEAL_KEY_FILE (mode 0600) and its seal.pub; print the key id.

    Refuses to write over an existing keyring or seal.pub: either may be the only key that opens sealed values."""
    found = context.current()
    keyring_path = found.vault.keyring_path
    pub_path = None if pub == "-" else Path(pub) if pub else found.store.public_key_path
    for path in (keyring_path, pub_path):
        if path is not None and os.path.lexists(path):
            raise click.ClickException(f"{_display(path)} exists: not written over (it may hold the only key that "
                                       "opens sealed values; `flask secrets rotate` makes a new one beside it)")
    pair = keys.generate_keypair()
    public = keys.dump_public_key(pair.public_key)
    try:
        keyring_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not fsutil.create_file(keyring_path, keys.dump_keyring([pair]), 0o600):
            raise click.ClickException(f"{_display(keyring_path)} appeared meanwhile: not written over")
        if pub_path is not None:
            fsutil.create_file(pub_path, public, 0o644)
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename}: {exc.strerror}") from None
    if pub_path is None:
        click.echo(public.decode("ascii"), nl=False)
    else:
        click.echo(pair.key_id)
    click.echo(f"made the private keyring {_display(keyring_path)} (mode 0600) with key {pair.key_id}; its public "
               f"key is {'on stdout' if pub_path is None else _display(pub_path)}: commit it to the config tree",
               err=True)


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
