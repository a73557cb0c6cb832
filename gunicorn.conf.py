"""gunicorn settings for `gunicorn app:app` (the Dockerfile's command); `python app.py` uses the same."""

import sys

from fidesmail.runtime import metrics, settings
from fidesmail.runtime.server import gunicorn_options, on_starting_checked

# The app is preloaded in the master (gunicorn_options), so the shared metrics folder must exist
# before it imports prometheus_client: now, while gunicorn reads this file.
metrics.prepare_multiprocess_dir()
try:
    globals().update(gunicorn_options(settings.from_environment()))
    on_starting = on_starting_checked  # a taken port: one line, not 5 s of retries and a traceback
except settings.SettingsError as exc:  # one line naming the setting, as `python app.py` says it
    print(f"fidesmail: cannot start: {exc}", file=sys.stderr)
    sys.exit(1)
