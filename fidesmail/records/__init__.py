"""Evidence of every send: message records, the Idempotency-Key ledger and (later) delivery events, in a database.

- `database`: the engine (SQLite in WAL mode embedded, PostgreSQL for replicas), short read and write
  transactions, and migrations at start (Alembic, `records/migrations/`);
- `schema`: the tables, with SQLAlchemy Core;
- `privacy`: what a record keeps instead of an address or a body (HMAC digests under the records key and
  the content key, two files of the instance dir);
- `messages`: creating, updating, finding and purging records, and claiming Idempotency-Keys;
- `record_json`: a record as the API answers it;
- `limits`: the verification limit (per address per rolling hour), counted in the record's own transaction;
- `pacing`: a config's `rate_limit`: one shared limiter row per config, slots 1/rate s apart;
- `evidence` and `canonical`: signed evidence bundles (Ed25519 over canonical JSON) and the evidence key.
- `events`: delivery events (once per token, statuses forward only); `maintenance`: the schema at start, the
  records key agreed, housekeeping; `writer_lock`: SQLite's writers queued.

The queue of messages accepted for later is `outbox/queue.py`.
"""
