"""gunicorn settings for `gunicorn app:app` (the Dockerfile's command); `python app.py` uses the same."""

import sys

from fidesmail import settings
from fidesmail.server import gunicorn_options

try:
    globals().update(gunicorn_options(settings.from_environment()))
except settings.SettingsError as exc:  # one line naming the setting, as `python app.py` says it
    print(f"fidesmail: cannot start: {exc}", file=sys.stderr)
    sys.exit(1)
