"""The fidesmail app: `python app.py` serves it under gunicorn; `gunicorn app:app` and `flask` load it."""

import sys

from fidesmail import create_app
from fidesmail.runtime import settings
from fidesmail.runtime.server import serve

if __name__ == "__main__":
    serve(create_app)
else:
    try:
        app = create_app()
    except settings.SettingsError as exc:  # `flask check` and the rest: one line, not a traceback
        print(f"fidesmail: {exc}", file=sys.stderr)
        sys.exit(1)
