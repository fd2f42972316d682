"""The only reader of the environment and `.env`; refuses placeholder secrets."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from dealmail.errors import ConfigurationError

SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name
MIN_SECRET_LENGTH = 32
PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "secret-key",
        "secret_key",
        "your-secret-key",
        "placeholder",
        "xxx",
        "todo",
        "insecure",
        "dev",
        "test",
    }
)

EmailBackendName = Literal["devinbox", "smtp", "sendgrid", "ses", "file"]


class Settings(BaseSettings):
    """Process configuration. The shop's own settings (name, address...) live in the database."""

    model_config = SettingsConfigDict(
        env_prefix="DEALMAIL_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Path("./data")
    database_url: str | None = None
    secret_key: SecretStr | None = None

    web_host: str = "127.0.0.1"
    web_port: int = 8000
    admin_port: int = 8501

    email_backend: EmailBackendName = "devinbox"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_tls: Literal["none", "starttls", "ssl"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = 30.0
    smtp_connections: int = 1
    devinbox_host: str = "127.0.0.1"
    devinbox_port: int = 2525
    file_backend_dir: Path | None = None

    sendgrid_api_key: SecretStr | None = None
    sendgrid_base_url: str = "https://api.sendgrid.com"
    ses_region: str = "us-east-1"
    ses_configuration_set: str | None = None
    ses_endpoint_url: str | None = None

    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key_file: Path | None = None

    retry_horizon_hours: float = Field(default=72.0, gt=0)
    # Worker tuning: first retry delay (doubles each time), how long a claim is held, claim size.
    retry_base_seconds: float = Field(default=60.0, gt=0)
    lease_seconds: float = Field(default=120.0, gt=0)
    worker_batch_size: int = Field(default=100, gt=0)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    void_window_minutes: float = Field(default=30.0, ge=0)

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir / 'dealmail.db'}"

    @property
    def secret_key_path(self) -> Path:
        return self.resolved_data_dir / SECRET_KEY_FILE

    def secret_key_bytes(self) -> bytes:
        """The signing key: from the environment, else the data directory's key file."""
        if self.secret_key is not None:
            value = self.secret_key.get_secret_value()
        elif self.secret_key_path.exists():
            value = self.secret_key_path.read_text(encoding="utf-8").strip()
        else:
            raise ConfigurationError(
                f"no secret key: run `dealmail init` (expected {self.secret_key_path})",
                code="secret_key_missing",
            )
        check_secret(value)
        return value.encode("utf-8")


def check_secret(value: str) -> None:
    if value.strip().lower() in PLACEHOLDER_SECRETS or len(value) < MIN_SECRET_LENGTH:
        raise ConfigurationError(
            "the secret key is a placeholder or shorter than "
            f"{MIN_SECRET_LENGTH} characters; remove it and run `dealmail init` to generate one",
            code="placeholder_secret",
        )


def generate_secret() -> str:
    return secrets.token_urlsafe(48)


def write_secret_file(path: Path) -> bool:
    """Create the key file (mode 0600) if absent; True when a new key was written."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(generate_secret() + "\n")
    return True


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    get_settings.cache_clear()
