"""fidesmail: email configs as files in git, Mailgun keys sealed, notices sent through Mailgun.

The map, by layer from the top (docs/architecture.md has the path of a request through it):

- `runtime/`: the process. `settings` reads every setting; `services` builds the long-lived objects (the
  composition root); `app` holds create_app; `startup` prepares a serving process; `server` runs gunicorn;
  `console` is the fidesmail command; `logs`, `metrics`; `loops` (the one helper for background loops) and
  `readiness` (each part's state, kept by a loop, read by `/readyz`, `/health` and sends).
- `cli/`: `commands` (flask check, token, secrets), `db` (flask db), `events` (flask messages verify, flask
  webhooks register).
- `web/`: HTTP. `blueprint`, the views (`configs`, `secrets`, `send`, `messages`, `outbox`, `webhooks`, `health`,
  `docs`), `auth` (tokens and scopes), `errors` (the one place that maps refusals to answers), `send_schemas`,
  `headers_doc` (the headers OpenAPI declares).
- `sending/`: `delivery` sends one message. `outbox/`: sending later (`prefer`, `payload`, `schedule`, `accept`,
  `deliverer`, its rows in `queue`, `gates`, `sweep`). `events/`: `intake` takes in one Mailgun webhook.
- `providers/`: `providers/mailgun/` builds the request (`request`), makes one `attempt`, retries (`client`), words
  failures (`failures`), reads webhooks (`webhooks`), registers them (`registration`).
- `content/`: what an email says and how overrides are bounded: `body_params`, `rendering`, `sandbox`,
  `deadline`, the built-in `templates/`.
- `records/`: message records in a database (`database`, `writer_lock`, `schema`, `privacy`, `messages`,
  `events`, `maintenance`), the Idempotency-Key ledger among them.
- `tree/`: the config tree: `files` (the trust boundary), `documents`, `loader` (tree -> Snapshot), `snapshot`,
  `lastgood`, `statcache`, `fingerprint` (an unchanged tree, by stat), `sync` (workers agree), `store` (the served
  snapshot and the one writer).
- `sealing/`: sealed secrets: `keys`, `envelope`, `sealed_file`, `vault`, `rotation`.
- `core/`: what every layer may use: `exceptions`, `problems`, `yamlio`, `fsutil`, `addresses`, `forks`.
"""

from fidesmail.runtime.app import create_app

__all__ = ["create_app"]
