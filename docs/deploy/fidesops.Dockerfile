# fidesops 1.8.2 that sends every email through the fidesmail sidecar: the stock image plus the
# adapter in integrations/fidesops and the package it depends on, integrations/sidecar (see their READMEs). fidesops' code and its start commands
# (`fidesops webserver`, `fidesops worker`) are unchanged.
#
# Build from the repository root (the context is integrations/: the adapter and the package it depends on):
#   docker build -f docs/deploy/fidesops.Dockerfile -t fidesops-fidesmail:1.8.2 integrations
#
# Run it with FIDESMAIL_URL and FIDESMAIL_TOKEN (an email:send token) on the web server and the
# worker alike; without them it behaves exactly as ethyca/fidesops:1.8.2.
FROM ethyca/fidesops:1.8.2

# Not editable: the adapter's .pth file must land in site-packages, where every Python process
# of the image (uvicorn's, Celery's and its children) runs it at start.
COPY sidecar /tmp/fidesmail-sidecar
COPY fidesops /tmp/fidesmail-fidesops
RUN pip install --no-cache-dir --disable-pip-version-check /tmp/fidesmail-sidecar /tmp/fidesmail-fidesops \
    && rm -rf /tmp/fidesmail-sidecar /tmp/fidesmail-fidesops
