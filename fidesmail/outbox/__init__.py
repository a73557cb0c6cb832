"""Sending later (contract section 11): accept a send now, post it in the background through Mailgun's outages.

- `prefer`: the `Prefer` header (RFC 7240): `respond-async` and `wait=N`;
- `payload`: what a queued message needs to be posted (recipient and rendered message), AES-GCM encrypted;
- `schedule`: what comes of one claim's attempts: done, tried again when (backoff, the provider's named moment,
  the deadline), and what each config's gate does;
- `tries`: one claimed message down its config's fallback chain (contract section 14; the walk is
  sending/failover): gates passed over until their probe, the worker's hold, each fallback's rate_limit;
- `accept`: the 202 path (stored durably before the answer) and waiting up to N seconds for the outcome;
- `pacing`: a config's `rate_limit`: its messages claimed one free slot at a time, in order (contract section 17);
- `deliverer`: the background thread of each worker: claims due messages with a lease and posts them;
- `queue` (the rows: claiming, settling, cancelling), `gates` (a config's queue parked behind one probe) and
  `sweep` (leases of dead workers, stray payloads, the deadline), `metrics`.
"""
