# fidesmail: the sidecar image. Build: `docker build -t fidesmail .`
# Run:   docker run -p 127.0.0.1:8080:8080 -v "$PWD/config:/app/config" -v fidesmail-instance:/app/instance fidesmail
# The config tree (/app/config) and the private key material (/app/instance) are volumes owned by
# uid 10001. /app/instance must stay writable (the store's lock file lives there): mount a key from a
# Secret elsewhere and point FIDESMAIL_SEAL_KEY_FILE at it. /app/config may be read-only with
# FIDESMAIL_READ_ONLY=true.
FROM python:3.11-slim

# gunicorn.conf.py puts gunicorn's worker heartbeat files in /dev/shm (a tmpfs in Docker and
# Kubernetes), so the image also runs with a read-only root file system (no writable /tmp).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FIDESMAIL_HOST=0.0.0.0 \
    FIDESMAIL_PORT=8080

WORKDIR /app

# A fixed, numeric, unprivileged user (Kubernetes' runAsNonRoot can check it) that owns only the
# two data folders; the code stays root-owned and read-only to the app.
RUN groupadd --system --gid 10001 fidesmail \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin fidesmail \
    && mkdir -p /app/config/email /app/instance \
    && chown -R 10001:10001 /app/config /app/instance \
    && chmod 0700 /app/instance

# Runtime dependencies only (requirements.txt; test and lint tools are in requirements-dev.txt), in their own layer.
COPY requirements.txt ./
RUN pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore -r requirements.txt

COPY . .

USER 10001:10001
VOLUME ["/app/config", "/app/instance"]
EXPOSE 8080

# Healthy = ready: the database, the sealing keys and the config tree can serve sends (/readyz answers 503 otherwise).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('FIDESMAIL_PORT', '8080'), timeout=4)"]

# Exec form: gunicorn is PID 1 and gets SIGTERM itself (graceful stop, exit 0).
# It reads gunicorn.conf.py: bind from FIDESMAIL_HOST/FIDESMAIL_PORT.
CMD ["gunicorn", "app:app"]
