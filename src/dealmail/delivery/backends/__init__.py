"""Email backends (SMTP, SendGrid, SES, dev inbox, file), chosen by name.

Which one: `DEALMAIL_EMAIL_BACKEND` (environment or `.env`) is the process default; the shop
setting `email_backend`, when the owner sets it from the dashboard, takes precedence, so a switch
made there reaches every worker without editing files. Credentials always come from the
environment (they are secrets, not shop data).
"""

from __future__ import annotations

from typing import get_args

from dealmail.config import EmailBackendName, Settings
from dealmail.delivery.backends.base import Backend, FailureKind, SendError, SendResult
from dealmail.errors import ConfigurationError

BACKEND_NAMES: tuple[str, ...] = get_args(EmailBackendName)

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "FailureKind",
    "SendError",
    "SendResult",
    "backend_name",
    "get_backend",
]


def backend_name(settings: Settings, shop_choice: str | None = None) -> str:
    """The shop's choice when set, else the environment's."""
    name = (shop_choice or "").strip().lower() or settings.email_backend
    if name not in BACKEND_NAMES:
        raise ConfigurationError(
            f"unknown email backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}",
            code="unknown_backend",
        )
    return name


def get_backend(settings: Settings, shop_choice: str | None = None) -> Backend:
    """A fresh backend (one connection for SMTP); the caller closes it."""
    name = backend_name(settings, shop_choice)
    if name == "devinbox":
        from dealmail.delivery.backends.smtp import SmtpBackend

        return SmtpBackend(
            settings.devinbox_host,
            settings.devinbox_port,
            timeout=settings.smtp_timeout,
            name="devinbox",
        )
    if name == "smtp":
        from dealmail.delivery.backends.smtp import SmtpBackend

        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return SmtpBackend(
            settings.smtp_host,
            settings.smtp_port,
            tls=settings.smtp_tls,
            username=settings.smtp_username,
            password=password,
            timeout=settings.smtp_timeout,
        )
    if name == "sendgrid":
        from dealmail.delivery.backends.sendgrid import SendGridBackend

        if settings.sendgrid_api_key is None:
            raise ConfigurationError(
                "the sendgrid backend needs DEALMAIL_SENDGRID_API_KEY",
                code="backend_not_configured",
            )
        return SendGridBackend(
            settings.sendgrid_api_key.get_secret_value(),
            settings.sendgrid_base_url,
            timeout=settings.smtp_timeout,
        )
    if name == "ses":
        from dealmail.delivery.backends.ses import SesBackend

        return SesBackend(
            settings.ses_region, settings.ses_configuration_set, settings.ses_endpoint_url
        )
    from dealmail.delivery.backends.file import FileBackend

    return FileBackend(settings.file_backend_dir or settings.resolved_data_dir / "outbox")
