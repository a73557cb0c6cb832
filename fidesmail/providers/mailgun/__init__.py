"""Mailgun v3: the provider (`provider`), its request as plain data (`request`), what an answer means
(`attempt`), its config's details and secrets (`details`, `secrets`), its signed webhooks (`webhooks`) and
their registration through its domain webhooks API (`registration`)."""
