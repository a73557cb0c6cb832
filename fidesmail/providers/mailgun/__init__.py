"""Mailgun v3: its config's `details` and `secrets`, the messages call as plain data (`request`), posted once
(`provider`) and classified (`attempt`); its signed webhooks (`webhooks`) and their registration (`registration`)."""
