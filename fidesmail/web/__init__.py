"""HTTP: blueprints, tokens, and the one place that turns results and refusals into answers."""
