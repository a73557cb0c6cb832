"""Mailchimp Transactional, formerly Mandrill (fides' `mailchimp_transactional`): its config's `details` and
`secrets`, the messages/send call as plain data (`request`), posted once over the shared session
(`provider`) and classified (`attempt`)."""
