"""Twilio SendGrid (fides' `twilio_email`): its config's `details` and `secrets`, the v3 Mail Send call as plain
data (`request`), posted once over the shared session (`provider`) and classified (`attempt`)."""
