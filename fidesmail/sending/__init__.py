"""Sending one message while the caller waits: config, key, render, record, provider, outcome; and the walk down
a config's fallback chain (`failover`), which the outbox takes too."""
