"""`flask webhooks register KEY URL` for SendGrid and Mandrill configs: their APIs point the provider's
webhook at fidesmail, and the key that verifies its posts is sealed into the config tree at once.

SendGrid: the account's Event Webhook settings (every event, signing on); its verification key becomes
`twilio_email_webhook_public_key`. Mandrill: a webhook for every delivery event; its `auth_key` becomes
`mailchimp_transactional_webhook_key`. SES: fidesmail holds no SNS permissions, so it says what to run.
Nothing prints a key.
"""

from __future__ import annotations

import click

from fidesmail.providers.mandrill import registration as mandrill
from fidesmail.providers.mandrill.request import BASE_URL as MANDRILL_BASE_URL
from fidesmail.providers.mandrill.secrets import API_KEY as MANDRILL_API_KEY
from fidesmail.providers.mandrill.secrets import WEBHOOK_KEY as MANDRILL_WEBHOOK_KEY
from fidesmail.providers.sendgrid import registration as sendgrid
from fidesmail.providers.sendgrid.request import BASE_URL as SENDGRID_BASE_URL
from fidesmail.providers.sendgrid.secrets import API_KEY as SENDGRID_API_KEY
from fidesmail.providers.sendgrid.secrets import WEBHOOK_PUBLIC_KEY
from fidesmail.sealing import envelope, keys

SES_STEPS = """fidesmail holds no SNS permissions: subscribe it to the SNS topic SES publishes to (README:
"Delivery events from SendGrid, Mandrill and SES"):
  aws sns subscribe --topic-arn <your topic ARN> --protocol https --notification-endpoint {target}
fidesmail confirms the subscription itself (its SubscribeURL must match FIDESMAIL_SNS_CERT_URL_PATTERN);
set details.sns_topic_arn to the topic's ARN so that messages of any other topic are refused."""

# service type -> (its API key field, the field its webhook key is sealed as, the registrar, its default base URL)
_PROVIDERS = {
    "twilio_email": (SENDGRID_API_KEY, WEBHOOK_PUBLIC_KEY, sendgrid, "SENDGRID_BASE_URL", SENDGRID_BASE_URL),
    "mailchimp_transactional": (MANDRILL_API_KEY, MANDRILL_WEBHOOK_KEY, mandrill, "MANDRILL_BASE_URL",
                                MANDRILL_BASE_URL),
}


def register(found, store, snapshot, entry, target: str, config, dry_run: bool) -> None:
    """Register the webhook of a SendGrid or Mandrill config to post to `target`, and seal its key."""
    service_type, config_key = entry.document["service_type"], entry.key
    if service_type == "aws_ses":
        click.echo(SES_STEPS.format(target=target))
        return
    if service_type not in _PROVIDERS:
        raise click.ClickException(f"{config_key} is a {service_type} config: its webhooks cannot be registered")
    api_field, key_field, module, base_setting, default_base = _PROVIDERS[service_type]
    base = config.get(base_setting) or default_base
    if dry_run:
        click.echo(f"would point the {service_type} webhook of {config_key} at {target} (created, or updated if "
                   f"one posts there already) and seal the key it answers as {config_key}/{key_field}")
        click.echo("nothing was sent (--dry-run)", err=True)
        return
    if snapshot.public_key is None:
        raise click.ClickException("there is no usable seal.pub: the webhook's key could not be sealed")
    try:
        api_key = found.vault.open(snapshot.sealed, config_key, api_field)
    except (keys.KeyringError, envelope.SealError) as exc:
        raise click.ClickException(f"the API key of {config_key} cannot be opened: {exc}") from None
    if api_key is None:
        raise click.ClickException(f"{config_key} has no {api_field}: set it first")
    registrar = module.SendGridWebhooks if module is sendgrid else module.MandrillWebhooks
    try:
        done, webhook_key = registrar(base, api_key, timeout=config["MAILGUN_TIMEOUT"]).register(target)
    except module.RegistrationError as exc:
        raise click.ClickException(str(exc)) from None
    sealed_value = envelope.seal(snapshot.public_key, config_key, key_field, webhook_key)
    store.write(lambda current: store.save_sealed(current.sealed.with_value(config_key, key_field, sealed_value)),
                create_lock=False)
    click.echo(f"{service_type} webhook {done}: {target}")
    click.echo(f"sealed its key as {config_key}/{key_field}", err=True)
