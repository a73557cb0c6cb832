"""An SES config's sealed secrets, by fides' names: how boto3 finds credentials, the keys, a role to assume."""

from __future__ import annotations

import re

from marshmallow import ValidationError, validate, validates_schema

from fidesmail.providers.secrets import CALLBACK_SIGNING_KEY, SecretsSchema, secret

AUTH_METHOD, ACCESS_KEY_ID, SECRET_ACCESS_KEY, ROLE_ARN = (
    "auth_method", "aws_access_key_id", "aws_secret_access_key", "aws_assume_role_arn")
AUTOMATIC, SECRET_KEYS = "automatic", "secret_keys"
ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
KEYS_NEEDED = ("An Access Key ID and a Secret Access Key must be provided if using the `secret_keys` Authentication "
               "Method")  # fides' words


class SesSecretsSchema(SecretsSchema):
    """The secrets of an aws_ses config (write-only). A body replaces all four: `automatic` keeps no old keys."""

    auth_method = secret("secret_keys (the keys below) or automatic (boto3's own credential chain: the environment, "
                         "the instance's or the task's role...). Required unless callback_signing_key is given alone.",
                         required_unless=(CALLBACK_SIGNING_KEY,),
                         checks=(validate.OneOf((AUTOMATIC, SECRET_KEYS)),))
    aws_access_key_id = secret("The IAM access key id (with secret_keys).")
    aws_secret_access_key = secret("The IAM secret access key (with secret_keys).")
    aws_assume_role_arn = secret("A role to assume through STS before sending (either method); its credentials are "
                                 "refreshed before they expire.",
                                 checks=(validate.Regexp(ROLE, error="Must be an IAM role ARN such as "
                                                                     "arn:aws:iam::123456789012:role/ses-sender."),))

    @validates_schema
    def _keys_for_secret_keys(self, data, **kwargs):
        if data.get(AUTH_METHOD) == SECRET_KEYS and not (data.get(ACCESS_KEY_ID) and data.get(SECRET_ACCESS_KEY)):
            raise ValidationError(KEYS_NEEDED)
