"""What providers report after a message was accepted: their signed webhooks, taken in once."""
