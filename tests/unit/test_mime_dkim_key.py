"""`dealmail dkim generate`: a 0600 key in the data directory and a TXT record that verifies."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path

import dkim as dkimpy
import pytest
from typer.testing import CliRunner

from campaign_support import make_composer, make_recipient
from dealmail.cli import app
from dealmail.config import Settings, reset_settings_cache
from dealmail.delivery import dkim
from dealmail.errors import ConfigurationError


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("DEALMAIL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DEALMAIL_DATABASE_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    reset_settings_cache()
    yield tmp_path
    reset_settings_cache()


def test_generate_writes_private_key_and_prints_a_record_that_verifies(data_dir: Path) -> None:
    result = CliRunner().invoke(
        app, ["dkim", "generate", "--selector", "dm2026", "--domain", "Sonne.Example"]
    )
    assert result.exit_code == 0, result.output
    key_file = data_dir / "dkim" / "dm2026.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "DEALMAIL_DKIM_SELECTOR=dm2026" in result.output
    line = next(x for x in result.output.splitlines() if "._domainkey." in x)
    assert line.startswith("dm2026._domainkey.sonne.example. IN TXT ")
    record = "".join(re.findall(r'"([^"]*)"', line))
    assert record.startswith("v=DKIM1; k=rsa; p=")

    settings = Settings(dkim_selector="dm2026")
    key = dkim.load_key(settings, "sonne.example")
    assert key is not None
    assert key.domain == "sonne.example"
    message = make_composer(key=key).compose(make_recipient())
    assert dkimpy.verify(message.raw, dnsfunc=lambda _name, timeout=5: record.encode())

    again = CliRunner().invoke(
        app, ["dkim", "generate", "--selector", "dm2026", "--domain", "sonne.example"]
    )
    assert again.exit_code == 2
    assert "dkim_key_exists" in again.output


def test_signing_is_off_without_selector_and_loud_with_a_missing_key(data_dir: Path) -> None:
    assert dkim.load_key(Settings(), "sonne.example") is None
    with pytest.raises(ConfigurationError) as caught:
        dkim.load_key(Settings(dkim_selector="nokey"), "sonne.example")
    assert caught.value.code == "dkim_key_unreadable"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--selector", "bad selector", "--domain", "sonne.example"], "invalid_selector"),
        (["--selector", "s1", "--domain", "not a domain"], "invalid_domain"),
    ],
)
def test_generate_refuses_bad_input(data_dir: Path, args: list[str], code: str) -> None:
    result = CliRunner().invoke(app, ["dkim", "generate", *args])
    assert result.exit_code == 2
    assert code in result.output
