"""Mailgun v3: the request as plain data (`request`), one attempt and its outcome (`attempt`),
the synchronous retry policy over a pooled session (`client`), and what failures mean (`failures`)."""
