"""The outbox in Prometheus: attempts by outcome (counters, summed over workers), and the queue itself
(depth by status, age of the oldest queued message), read from the database when /metrics is scraped."""

from __future__ import annotations

from fidesmail.core.exceptions import Unavailable
from fidesmail.records.messages import now_ms

CALLBACK_OUTCOMES = ("delivered", "retried", "given_up")
OUTCOMES = ("accepted", "rate_limited", "server_error", "connection_failed", "refused", "unknown", "not_sent")


class OutboxMetrics:
    """Registered beside the service's own metrics (fidesmail/metrics.py)."""

    def __init__(self, metrics, queue):
        from prometheus_client import Counter

        self.attempts = Counter("fidesmail_outbox_attempts_total", "Background posts to the provider by outcome "
                                "(not_sent: the config or its key could not be used)", ["outcome"],
                                registry=metrics.registry)
        self.swept = Counter("fidesmail_outbox_swept_total", "Queued messages ended by the sweep: expired "
                             "(their worker stopped while posting: unknown), gave_up (the delivery deadline)",
                             ["what"], registry=metrics.registry)
        for outcome in OUTCOMES:  # every series from the start, so rates work before the first fault
            self.attempts.labels(outcome)
        for what in ("expired", "gave_up"):
            self.swept.labels(what)
        self.callbacks = Counter("fidesmail_callbacks_total", "Callback posts by outcome: delivered (a 2xx), "
                                 "retried (not delivered yet), given_up (the delivery deadline)", ["outcome"],
                                 registry=metrics.registry)
        for outcome in CALLBACK_OUTCOMES:
            self.callbacks.labels(outcome)
        metrics.add_collector(QueueCollector(queue))

    def watch_callbacks(self, metrics, callback_queue) -> None:
        """fidesmail_callbacks_waiting, read from the database at each scrape."""
        metrics.add_collector(CallbackCollector(callback_queue))


class QueueCollector:
    """fidesmail_outbox_messages{status} and fidesmail_outbox_oldest_queued_age_seconds, from the database."""

    def __init__(self, queue):
        self.queue = queue

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        try:
            stats = self.queue.stats()
        except Unavailable:
            return  # the database is down: /health says so; no made-up zeros here
        depth = GaugeMetricFamily("fidesmail_outbox_messages", "Messages in the outbox by status "
                                  "(the whole database: every worker and replica)", labels=["status"])
        depth.add_metric(["queued"], stats.queued)
        depth.add_metric(["sending"], stats.sending)
        yield depth
        age = 0.0 if stats.oldest_queued_ms is None else max(0.0, (now_ms() - stats.oldest_queued_ms) / 1000)
        yield GaugeMetricFamily("fidesmail_outbox_oldest_queued_age_seconds",
                                "Age of the oldest queued message (0 when none is queued)", value=age)


class CallbackCollector:
    """fidesmail_callbacks_waiting: status changes not yet delivered to their receivers (every worker and replica)."""

    def __init__(self, callback_queue):
        self.callback_queue = callback_queue

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        try:
            waiting = self.callback_queue.waiting()
        except Unavailable:
            return
        yield GaugeMetricFamily("fidesmail_callbacks_waiting", "Callbacks not yet delivered (the whole database)",
                                value=waiting)
