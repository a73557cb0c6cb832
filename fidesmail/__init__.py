"""fidesmail: email configs as files in git, Mailgun keys sealed, notices sent through Mailgun.

The map (docs/architecture.md has the path of a request through it):

- `settings` reads every setting; `startup` prepares a serving process; `server` runs gunicorn;
  `services` builds the long-lived objects and is how code finds them; `forks` resets them in workers.
- `api/` holds the blueprints (views only); `auth` the tokens; `errors` maps `exceptions` to answers.
- `tree/` is the config tree: `files` (the trust boundary), `yamlio`, `loader` (tree -> Snapshot),
  `statcache`, `fingerprint` (an unchanged tree, by stat), `sync` (workers agree), `store` (the served
  snapshot and the one writer).
- `sealing/` is sealed secrets: `keys`, `envelope`, `sealed_file`, `vault`, `rotation`.
- `body_params`, `rendering`, `sandbox`, `deadline`: what an email says and how overrides are bounded.
- `delivery` sends one message; `mailgun/` builds the request, makes one `attempt`, retries (`client`).
- `records/`: message records in a database (`database`, `writer_lock`, `schema`, `privacy`, `messages`,
  `maintenance`), the Idempotency-Key ledger among them, and delivery `events`; `api/messages` shows them.
- `intake` takes in one Mailgun webhook (`api/webhooks`; Mailgun's format in `mailgun/webhooks`);
  `event_commands` are `flask messages verify` and `flask webhooks register` (`mailgun/registration`).
- `outbox/`: sending later (`Prefer: respond-async`): `prefer`, `payload` (encrypted), `schedule`, `accept`,
  `deliverer` (a background thread per worker); its rows are `records/outbox` (with `records/gates` and
  `records/outbox_sweep`), its endpoint `api/outbox`.
- `logs`, `metrics`, `cli`.
"""

from fidesmail.runtime.app import create_app

__all__ = ["create_app"]
