"""The running service: settings, the composition root, start-up, gunicorn, logs and metrics."""
