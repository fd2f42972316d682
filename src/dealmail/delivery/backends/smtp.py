"""SMTP backend: one reused connection, STARTTLS or implicit TLS, auth, reconnect on a drop."""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl

from dealmail.delivery.backends.base import FailureKind, SendError, SendResult
from dealmail.delivery.envelope import ComposedMessage
from dealmail.delivery.retry import smtp_error


class SmtpBackend:
    """Not thread-safe: each sending thread owns one backend, i.e. one connection."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: str = "none",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        name: str = "smtp",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if tls not in ("none", "starttls", "ssl"):
            raise ValueError(f"unknown SMTP TLS mode {tls!r}")
        self.name = name
        self.host = host
        self.port = port
        self.tls = tls
        self.username = username
        self.password = password
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._connection: smtplib.SMTP | None = None

    def open(self) -> None:
        """Connect now (the rate limiter times sends, so a slow first connect must come first)."""
        if self._connection is None:
            self._connection = self._connect()

    def _context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        try:
            connection: smtplib.SMTP
            if self.tls == "ssl":
                connection = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self._context()
                )
            else:
                connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            connection.ehlo()
            if self.tls == "starttls":
                connection.starttls(context=self._context())
                connection.ehlo()
            if self.username:
                connection.login(self.username, self.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise SendError(
                FailureKind.POLICY, f"SMTP authentication failed: {exc.smtp_code}", code="auth"
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise smtp_error(exc.smtp_code, exc.smtp_error) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise _connection_error(exc) from exc
        return connection

    def send(self, message: ComposedMessage) -> SendResult:
        reused = self._connection is not None
        try:
            return self._send_once(message)
        except SendError as exc:
            # A reused connection the server closed while idle: one fresh try before giving up.
            if reused and exc.code == "connection" and self._connection is None:
                return self._send_once(message)
            raise

    def _send_once(self, message: ComposedMessage) -> SendResult:
        if self._connection is None:
            self._connection = self._connect()
        connection = self._connection
        sender = wire_address(message.envelope_from)
        recipients = [wire_address(rcpt) for rcpt in message.recipients]
        options: list[str] = []
        if not all(address.isascii() for address in (sender, *recipients)):
            if not connection.has_extn("smtputf8"):
                raise SendError(
                    FailureKind.PERMANENT,
                    "the address has non-ASCII characters before the @ and the server does not "
                    "accept internationalised addresses (no SMTPUTF8)",
                    code="smtputf8",
                )
            options.append("SMTPUTF8")
        try:
            refused = connection.sendmail(sender, recipients, message.raw, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            self._after_refusal(code)
            raise smtp_error(code, reply) from exc
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused
            self._after_refusal(exc.smtp_code)
            raise smtp_error(exc.smtp_code, exc.smtp_error) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise _connection_error(exc) from exc
        if refused:
            code, reply = next(iter(refused.values()))
            raise smtp_error(code, reply)
        return SendResult(provider_message_id=message.message_id)

    def _after_refusal(self, code: int) -> None:
        # 421 means the server is closing the channel; otherwise smtplib has already sent RSET.
        if code == 421:
            self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (OSError, smtplib.SMTPException):
            connection.close()


def wire_address(address: str) -> str:
    """An internationalised domain in its ASCII (punycode) form, which every server accepts."""
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return address


def _connection_error(exc: BaseException) -> SendError:
    if isinstance(exc, socket.timeout | TimeoutError):
        return SendError(FailureKind.TEMPORARY, f"SMTP timeout: {exc}", code="timeout")
    return SendError(
        FailureKind.TEMPORARY,
        f"SMTP connection failed: {exc or type(exc).__name__}",
        code="connection",
    )
