"""The service's own vocabulary, below everything: refusals, outcomes, addresses, messages, files, YAML."""
