"""The `fidesmail` command that `pip install .` installs: `fidesmail serve` is `python app.py`, every
other command is the `flask` one (check, token, secrets, ...) on the app factory, from any directory."""

from __future__ import annotations

import sys

import click
from flask.cli import FlaskGroup, routes_command, shell_command

from fidesmail import create_app
from fidesmail.runtime import server, settings

# Command-line options of `serve`, each standing in for its setting for one run.
_OVERRIDES = (("host", "FIDESMAIL_HOST"), ("port", "FIDESMAIL_PORT"), ("workers", "WEB_CONCURRENCY"))


@click.command("serve")
@click.option("--host", help="Listen address (FIDESMAIL_HOST; default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Listen port (FIDESMAIL_PORT; default 8080).")
@click.option("--workers", type=click.IntRange(min=1), help="gunicorn workers (WEB_CONCURRENCY; default 2).")
def serve_command(**options):
    """Serve the API under gunicorn until SIGTERM or Ctrl-C, as `python app.py` does.

    The other settings come from the FIDESMAIL_* environment variables (see the README's Settings).
    """
    argv = [f"--{option}={options[option]}" for option, _ in _OVERRIDES if options[option] is not None]
    server.serve(create_app, argv)  # the same parser and checks as `python app.py`


def _app_or_exit():
    """The app; a setting that cannot be used is one line and exit 1, as for `python app.py`."""
    try:
        return create_app()
    except settings.SettingsError as exc:
        print(f"fidesmail: cannot start: {exc}", file=sys.stderr)
        sys.exit(1)


cli = FlaskGroup(
    name="fidesmail",
    help="fidesmail: email configs in git, Mailgun keys sealed, fidesops' notices sent through Mailgun.",
    create_app=lambda: _app_or_exit(),
    add_default_commands=False,  # no `run`: Flask's development server is not how fidesmail is served
    add_version_option=False,
    load_dotenv=False,  # settings come from FIDESMAIL_* variables (and their _FILE forms), not .env files
    set_debug_flag=False,
)
# The app is always fidesmail's, never in debug mode, and reads no .env file: none of Flask's options apply.
cli.params = [param for param in cli.params if param.name not in ("app", "env_file", "debug")]
cli.add_command(serve_command)
cli.add_command(shell_command)
cli.add_command(routes_command)
cli = click.version_option(package_name="fidesmail", prog_name="fidesmail")(cli)


def main() -> None:
    """The console script's entry point."""
    cli.main(prog_name="fidesmail")
