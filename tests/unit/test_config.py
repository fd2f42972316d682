"""Configuration refuses placeholder secrets and finds the key file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from dealmail.config import Settings, check_secret, write_secret_file
from dealmail.errors import ConfigurationError


@pytest.mark.parametrize("value", ["", "changeme", "secret", "CHANGEME", "short-but-random-1"])
def test_placeholder_and_short_secrets_are_refused(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_secret(value)
    assert caught.value.code == "placeholder_secret"


def test_secret_from_environment_wins_over_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=SecretStr("k" * 40))
    assert settings.secret_key_bytes() == b"k" * 40


def test_placeholder_in_environment_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=SecretStr("changeme"))
    with pytest.raises(ConfigurationError):
        settings.secret_key_bytes()


def test_missing_key_says_run_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings(data_dir=tmp_path).secret_key_bytes()
    assert "dealmail init" in caught.value.message


def test_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    assert write_secret_file(path) is True
    first = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert write_secret_file(path) is False
    assert path.read_text() == first
    assert len(first.strip()) >= 32


def test_database_defaults_to_sqlite_in_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve()}/dealmail.db"


def test_env_prefix_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DEALMAIL_WEB_PORT=9123\nDEALMAIL_EMAIL_BACKEND=file\n")
    monkeypatch.delenv("DEALMAIL_WEB_PORT", raising=False)
    monkeypatch.delenv("DEALMAIL_EMAIL_BACKEND", raising=False)
    settings = Settings()
    assert settings.web_port == 9123
    assert settings.email_backend == "file"
