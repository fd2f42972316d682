"""Backends: SMTP (STARTTLS, implicit TLS, auth, reuse, reconnect), file, and choosing by name."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dealmail.config import Settings
from dealmail.delivery.backends import backend_name, get_backend
from dealmail.delivery.backends.base import FailureKind, SendError
from dealmail.delivery.backends.file import FileBackend
from dealmail.delivery.backends.smtp import SmtpBackend
from dealmail.errors import ConfigurationError
from delivery_support import RecordingHandler, free_port, message

USER, PASSWORD = "shop", "correct horse battery staple"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.load_verify_locations(certificate[0])
    return context


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


class PeerCountingHandler(RecordingHandler):
    def __init__(self) -> None:
        super().__init__()
        self.peers: set[Any] = set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.peers.add(session.peer)
        return await super().handle_DATA(server, session, envelope)


def controller(handler: Any, **kwargs: Any) -> Any:
    from aiosmtpd.controller import Controller

    return Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)


def test_starttls_with_authentication_reuses_one_connection(
    certificate: tuple[Path, Path],
) -> None:
    handler = PeerCountingHandler()
    server = controller(
        handler,
        tls_context=server_context(certificate),
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    server.start()
    try:
        backend = SmtpBackend(
            "localhost",
            server.port,
            tls="starttls",
            username=USER,
            password=PASSWORD,
            ssl_context=client_context(certificate),
        )
        for row in range(3):
            assert backend.send(message(row=row)).provider_message_id == f"<{row}@shop.example>"
        backend.close()
    finally:
        server.stop()
    assert len(handler.received) == 3
    assert len(handler.peers) == 1, "one connection for all three messages"


def test_implicit_tls(certificate: tuple[Path, Path]) -> None:
    handler = RecordingHandler()
    server = controller(handler, ssl_context=server_context(certificate))
    server.start()
    try:
        backend = SmtpBackend(
            "localhost", server.port, tls="ssl", ssl_context=client_context(certificate)
        )
        backend.send(message())
        backend.close()
    finally:
        server.stop()
    assert [m.recipients for m in handler.received] == [("ann@example.com",)]


def test_wrong_credentials_are_a_policy_failure(certificate: tuple[Path, Path]) -> None:
    server = controller(
        RecordingHandler(),
        tls_context=server_context(certificate),
        authenticator=authenticator,
        auth_required=True,
    )
    server.start()
    try:
        backend = SmtpBackend(
            "localhost",
            server.port,
            tls="starttls",
            username=USER,
            password="wrong",
            ssl_context=client_context(certificate),
        )
        with pytest.raises(SendError) as raised:
            backend.send(message())
    finally:
        server.stop()
    assert raised.value.kind is FailureKind.POLICY
    assert raised.value.code == "auth"


def test_a_connection_the_server_closed_is_reopened() -> None:
    class ClosingHandler(RecordingHandler):
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            answer = await super().handle_DATA(server, session, envelope)
            server.loop.call_later(0.05, server.transport.close)  # idle timeout, say
            return answer

    handler = ClosingHandler()
    server = controller(handler)
    server.start()
    try:
        backend = SmtpBackend("127.0.0.1", server.port)
        backend.send(message(row=1))
        import time

        time.sleep(0.3)
        backend.send(message(row=2))
        backend.close()
    finally:
        server.stop()
    assert len(handler.received) == 2


def test_refusals_are_classified() -> None:
    class Refusing(RecordingHandler):
        async def handle_RCPT(
            self, server: Any, session: Any, envelope: Any, address: str, options: Any
        ) -> str:
            if address.startswith("gone"):
                return "550 5.1.1 <gone@example.com>: no such user"
            if address.startswith("busy"):
                return "452 4.2.2 mailbox busy"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    server = controller(Refusing())
    server.start()
    try:
        backend = SmtpBackend("127.0.0.1", server.port)
        with pytest.raises(SendError) as bounced:
            backend.send(message("gone@example.com"))
        with pytest.raises(SendError) as busy:
            backend.send(message("busy@example.com"))
        backend.send(message("ann@example.com"))  # the connection is still good
        backend.close()
    finally:
        server.stop()
    assert (bounced.value.kind, bounced.value.code) == (FailureKind.HARD_BOUNCE, "550 5.1.1")
    assert (busy.value.kind, busy.value.code) == (FailureKind.TEMPORARY, "452 4.2.2")


def test_nobody_listening_is_temporary() -> None:
    backend = SmtpBackend("127.0.0.1", free_port(), timeout=2)
    with pytest.raises(SendError) as raised:
        backend.send(message())
    assert (raised.value.kind, raised.value.code) == (FailureKind.TEMPORARY, "connection")


def test_file_backend_writes_eml_files(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path / "outbox")
    result = backend.send(message())
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert [f.name for f in files] == [result.provider_message_id]
    assert files[0].read_bytes() == message().raw


def test_backends_are_chosen_by_name(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, devinbox_port=2626, smtp_port=2727)
    devinbox = get_backend(settings)
    assert isinstance(devinbox, SmtpBackend)
    assert (devinbox.name, devinbox.port) == ("devinbox", 2626)
    smtp = get_backend(settings, "smtp")  # the shop's choice wins over the environment
    assert isinstance(smtp, SmtpBackend)
    assert (smtp.name, smtp.port) == ("smtp", 2727)
    assert isinstance(
        get_backend(settings.model_copy(update={"email_backend": "file"})), FileBackend
    )
    assert backend_name(settings, "") == "devinbox"
    with pytest.raises(ConfigurationError):
        backend_name(settings, "carrier-pigeon")
    with pytest.raises(ConfigurationError):
        get_backend(settings, "sendgrid")  # no API key


def test_internationalised_addresses() -> None:
    handler = RecordingHandler()
    server = controller(handler, enable_SMTPUTF8=False)
    server.start()
    try:
        backend = SmtpBackend("127.0.0.1", server.port)
        backend.send(message("ann@bücher.example"))
        with pytest.raises(SendError) as raised:
            backend.send(message("jörg@example.com"))
        backend.close()
    finally:
        server.stop()
    assert handler.received[0].recipients == ("ann@xn--bcher-kva.example",)
    assert (raised.value.kind, raised.value.code) == (FailureKind.PERMANENT, "smtputf8")
    utf8 = RecordingHandler()
    server = controller(utf8, enable_SMTPUTF8=True)
    server.start()
    try:
        backend = SmtpBackend("127.0.0.1", server.port)
        backend.send(message("jörg@example.com"))
        backend.close()
    finally:
        server.stop()
    assert utf8.received[0].recipients == ("jörg@example.com",)
