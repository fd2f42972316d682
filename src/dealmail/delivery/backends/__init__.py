"""Email backends: SMTP, SendGrid, SES, dev inbox, file."""
