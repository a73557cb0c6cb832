"""Sending one message while the caller waits: config, key, render, record, provider, outcome."""
