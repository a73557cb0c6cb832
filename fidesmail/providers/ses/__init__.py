"""Amazon SES (fides' `aws_ses`) through boto3: its config's `details` and `secrets`, SES v2 SendEmail as plain
data (`request`), the clients built once per region and credentials (`clients`), posted once (`provider`) and
every botocore error classified (`attempt`)."""
