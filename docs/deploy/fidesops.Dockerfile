# fidesops 1.8.2 that sends every email through the fidesmail sidecar: the stock image plus the
# adapter in integrations/fidesops (see its README). fidesops' code and its start commands
# (`fidesops webserver`, `fidesops worker`) are unchanged.
#
# Build from the repository root (the context is the adapter package alone):
#   docker build -f docs/deploy/fidesops.Dockerfile -t fidesops-fidesmail:1.8.2 integrations/fidesops
#
# Run it with FIDESMAIL_URL and FIDESMAIL_TOKEN (an email:send token) on the web server and the
# worker alike; without them it behaves exactly as ethyca/fidesops:1.8.2.
FROM ethyca/fidesops:1.8.2

# Not editable: the adapter's .pth file must land in site-packages, where every Python process
# of the image (uvicorn's, Celery's and its children) runs it at start.
COPY . /tmp/fidesmail-fidesops
RUN pip install --no-cache-dir --disable-pip-version-check /tmp/fidesmail-fidesops \
    && rm -rf /tmp/fidesmail-fidesops
