"""`flask messages verify-bundle FILE`: an evidence bundle checked offline with this service's evidence key.

The key is the instance dir's `evidence.key` (its public half), never the public key a bundle carries:
a bundle signed by anyone else fails, whatever key it names. Exit 0 when intact; 1 naming each altered
record's message_id, or saying why the bundle is not this service's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from fidesmail.cli.events import messages_group
from fidesmail.records import evidence
from fidesmail.web import context


@click.command("verify-bundle")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@with_appcontext
def verify_bundle_command(path: Path):
    """Check an evidence bundle (GET /api/v1/email/messages/evidence) with this service's evidence key."""
    try:
        public_key = context.current().evidence_key.public()
    except evidence.EvidenceKeyError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        text = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
        document = json.loads(text)
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, RecursionError):
        click.echo(f"{path}: not JSON: not an evidence bundle")
        sys.exit(1)
    verdict = evidence.verify(document, public_key)
    if verdict.intact:
        bundle = document["bundle"]
        click.echo(f"{path}: intact: {len(bundle['records'])} record(s) of reference {bundle.get('reference')}, "
                   f"signed at {bundle.get('generated_at')} by this service's evidence key "
                   f"{evidence.key_id_of(public_key)}")
        return
    for message_id in verdict.altered:
        click.echo(f"{path}: altered: record {message_id} no longer matches the digest the signed bundle lists")
    for problem in verdict.problems:
        click.echo(f"{path}: {problem}")
    sys.exit(1)


def register(app: Flask) -> None:
    """Add the command to `flask messages` (the group cli/events.py adds)."""
    messages_group.add_command(verify_bundle_command)
