"""Email providers, one package each: build the request, post it once, classify the answer."""
