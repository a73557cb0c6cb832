"""gunicorn settings for `gunicorn app:app` (the Dockerfile's command); `python app.py` uses the same."""

from fidesmail.server import gunicorn_options

globals().update(gunicorn_options())
