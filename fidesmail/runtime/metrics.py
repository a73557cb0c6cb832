"""Prometheus metrics, summed over every gunicorn worker when the launcher set a multiprocess dir."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Label values come from requests: any unknown method is one value, so no client can add series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


_prepared_in: int | None = None  # the pid that prepared the folder (twice would drop the master's values)


def prepare_multiprocess_dir() -> None:
    """In gunicorn's master, before any worker imports prometheus_client: a fresh, shared folder (once)."""
    global _prepared_in
    if _prepared_in == os.getpid():
        return
    _prepared_in = os.getpid()
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):  # values of a previous run would be added to ours
            if name.endswith(".db"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(path, name))
    else:
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="fidesmail-metrics-", dir=base)


def remove_multiprocess_dir() -> None:
    """On shutdown of the master that made the folder."""
    path = os.environ.get(MULTIPROC_ENV, "")
    if os.path.basename(path).startswith("fidesmail-metrics-"):
        shutil.rmtree(path, ignore_errors=True)


def worker_exited(pid: int) -> None:
    """Forget a dead worker's live gauges."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


class Metrics:
    """The service's metrics (prometheus_client is imported only after the launcher set the env)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self._request_children: dict[tuple, tuple] = {}  # see observe_request
        self._children: dict[tuple, object] = {}  # see _child
        # Outside gunicorn (tests, embedding) each app gets its own registry: no global clashes.
        registry = None if self.multiprocess else CollectorRegistry()
        self.registry = registry
        self.requests = Counter("fidesmail_requests_total", "HTTP requests by endpoint, method and status",
                                ["endpoint", "method", "status"], registry=registry)
        self.request_seconds = Histogram("fidesmail_request_duration_seconds", "HTTP request duration",
                                         ["endpoint"], registry=registry)
        self.sends = Counter("fidesmail_sends_total", "Sends by action type, outcome and provider",
                             ["action_type", "outcome", "provider"], registry=registry)
        self.provider_seconds = Histogram("fidesmail_provider_latency_seconds",
                                          "Time the provider took to answer a send, retries included", ["provider"],
                                          registry=registry,
                                          buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.failovers = Counter("fidesmail_failovers_total", "Messages a provider did not take, sent on to the next "
                                 "config's provider at once (contract section 14)", ["from_provider", "to_provider"],
                                 registry=registry)
        self.reloads = Counter("fidesmail_config_reloads_total", "Config tree reloads", registry=registry)
        self.reload_failures = Counter("fidesmail_config_reload_failures_total",
                                       "Reloads that found a file they refused", registry=registry)
        self.configs_loaded = Gauge("fidesmail_configs_loaded", "Configs served", registry=registry,
                                    multiprocess_mode="max")
        self.webhook_events = Counter("fidesmail_webhook_events_total",
                                      "Webhook events by type, outcome (verified, replay, unknown_message, ignored, "
                                      "subscribed, bad_signature, stale, no_signing_key, wrong_topic, untrusted_url, "
                                      "invalid) and provider", ["event", "outcome", "provider"], registry=registry)
        self.limited = Counter("fidesmail_limited_total", "Sends refused with 429 by a limit: verification (per "
                               "address per hour) or rate_limit (a config's messages per second)", ["limit"],
                               registry=registry)
        for limit in ("verification", "rate_limit"):  # both series from the start
            self.limited.labels(limit)
        self._collectors: list = []  # read at scrape time (the outbox's queue), see add_collector

    def _child(self, metric, *labels):
        """metric.labels(*labels), kept: labels() takes a lock and builds its key on every call. The label
        values are bounded (action types, outcomes, catalog service types), so the dict is too."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = metric.labels(*labels)
            if len(self._children) < 10_000:
                self._children[key] = child
        return child

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        # Both children under one key: one lookup for the request's two metrics (see _child).
        key = (endpoint, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(endpoint, method if method in KNOWN_METHODS else "other", str(status)),
                        self.request_seconds.labels(endpoint))
            if len(self._request_children) < 10_000:
                self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_send(self, action_type: str, outcome: str, provider: str | None) -> None:
        """One send's result (`provider`: a service type from the catalog, so the series stay bounded)."""
        self._child(self.sends, action_type, outcome, provider or "none").inc()

    def count_failover(self, from_provider: str, to_provider: str) -> None:
        """One message on from one provider to the next (service types from the catalog: bounded series)."""
        self.failovers.labels(from_provider, to_provider).inc()

    def observe_provider(self, provider: str, seconds: float) -> None:
        self._child(self.provider_seconds, provider).observe(seconds)

    def observe_reload(self, snapshot, previous=None) -> None:
        self.reloads.inc()
        if not snapshot.ok:
            self.reload_failures.inc()
        self.configs_loaded.set(len(snapshot.keys))

    def add_collector(self, collector) -> None:
        """A custom collector (its collect() runs at each scrape, in the worker that serves /metrics)."""
        self._collectors.append(collector)
        if self.registry is not None:
            self.registry.register(collector)

    def exposition(self) -> tuple[bytes, str]:
        """The text format of every worker's metrics, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            for collector in self._collectors:
                registry.register(collector)
        else:
            registry = self.registry
        return generate_latest(registry), CONTENT_TYPE_LATEST
