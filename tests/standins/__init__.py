"""Test stand-ins for the email providers: real HTTP servers on 127.0.0.1 that behave like each provider.

- `ses.SesStandin`: Amazon SES (and STS) through moto's server, behind a fault-injecting proxy.
- `sendgrid.SendGridFake`: Twilio SendGrid's v3 Mail Send and Event Webhook (`sendgrid_events` signs).
- `mandrill.MandrillFake`: Mailchimp Transactional (Mandrill) messages/send and webhooks (`mandrill_events` signs).
- `sns.SnsSigner`: Amazon SNS messages carrying SES events, signed (versions 1 and 2) with a served certificate.
- `tests/mailgun_fake.py` (beside this package): Mailgun.
- `inbox.Inbox`: a receiver that records every request (for webhooks the stand-ins post).

Shared: `faults.py` (the faults every stand-in can make), `server.py` (the HTTP base: lifecycle,
faults acted out, /fake/ control endpoints, accepted messages, waiting on state), `webhooks.py`
(posting a provider's webhooks in order, with retries). Each module's docstring is its manual.
"""
