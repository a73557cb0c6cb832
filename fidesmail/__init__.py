"""fidesmail: email configs as files in git, provider keys sealed, privacy notices sent and evidenced.

The map, one layer per folder, top to bottom; imports only go down (`lint-imports`, contracts in
pyproject.toml). docs/architecture.md has the path of a send, an async send and a webhook through it.

- `runtime/`: settings, the composition root (`services`: the only module that builds everything),
  `app` (create_app), start-up, gunicorn, logs, metrics, `loops` (the one helper for background loops)
  and `readiness` (database, sealing, tree: state a loop keeps, read by /readyz, /health and sends).
- `cli/`: the `flask` commands (check, token, secrets, db, messages verify and verify-bundle, webhooks register).
- `web/`: blueprints, tokens, and `errors`, the one place that turns refusals and results into HTTP.
- `outbox/` (sending later: the 202, the queue, gates, pacing, the background deliverer) and `events/`
  (a provider's signed webhooks, taken in once).
- `sending/`: one message while the caller waits (`delivery.Sender`), what may be retried (`retrying`), and
  the walk down a config's fallback chain (`failover`), written once for it and the outbox.
- `tree/`: the config tree (GitOps) and its trust boundary: files -> validated Snapshot -> every worker.
- `providers/`: one package per email provider behind `base.Provider` (build the request, post once,
  classify the answer): `mailgun`, `sendgrid`, `mandrill`, `ses` (boto3); `catalog` lists them; `http` and
  `scrub` are what they share.
- `records/` (message records, events, the Idempotency-Key ledger, the limits, signed evidence),
  `content/` (what each action type's email says, fides' messaging templates and their placeholders,
  the template sandbox), `sealing/` (sealed secrets).
- `core/`: the vocabulary every layer shares: outcomes and statuses, refusals, Message, addresses.
"""

from fidesmail.runtime.app import create_app

__all__ = ["create_app"]
