"""Mailgun v3: the provider (`provider`), its request as plain data (`request`), what an answer means
(`attempt`), its config's details (`details`), its signed webhooks (`webhooks`) and their registration
through its domain webhooks API (`registration`)."""
