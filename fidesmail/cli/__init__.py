"""The `flask` (and `fidesmail`) commands: check, token, secrets, db, messages, webhooks."""
