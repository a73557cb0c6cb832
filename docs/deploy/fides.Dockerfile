# fides 2.78.2 that sends every email through the fidesmail sidecar: the stock image plus the adapter
# in integrations/fides and the package it depends on, integrations/sidecar (see their READMEs). fides' code and its start commands (`fides webserver`,
# `fides worker`) are unchanged; SMS (twilio_text) is still sent by fides itself.
#
# Build from the repository root (the context is integrations/: the adapter and the package it depends on):
#   docker build -f docs/deploy/fides.Dockerfile -t fides-fidesmail:2.78.2 integrations
#
# Run it with FIDESMAIL_URL and FIDESMAIL_TOKEN (an email:send token) on the web server and the
# worker alike; without them it behaves exactly as ethyca/fides:2.78.2.
FROM ethyca/fides:2.78.2

# fides' Python environment (/opt/fides, first on PATH) belongs to root; the image runs as fidesuser
# (uid and gid 1001, given as numbers so that any host resolves them).
USER 0
# Not editable: the adapter's .pth file must land in site-packages, where every Python process of
# the image (uvicorn's, Celery's and its children) runs it at start.
COPY sidecar /tmp/fidesmail-sidecar
COPY fides /tmp/fidesmail-fides
RUN pip install --no-cache-dir --disable-pip-version-check /tmp/fidesmail-sidecar /tmp/fidesmail-fides \
    && rm -rf /tmp/fidesmail-sidecar /tmp/fidesmail-fides
USER 1001:1001
