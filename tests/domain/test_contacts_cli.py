"""`dealmail contacts` and `dealmail segments` through the CLI: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dealmail.cli import app
from dealmail.config import Settings

LIST = (
    "Email Address,First Name,Last Name,TAGS,City\r\n"
    "ana@example.com,Ana,Lima,VIP,Lyon\r\n"
    "ben@example.com,Ben,,,Paris\r\n"
    "broken-address,X,,,\r\n"
    "ANA@example.com ,,,regulars,\r\n"
)


@pytest.fixture
def cli(settings: Settings) -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def imported(cli: CliRunner, tmp_path: Path) -> CliRunner:
    path = tmp_path / "list.csv"
    path.write_text(LIST, encoding="utf-8")
    code, out, _err = invoke(cli, "contacts", "import", str(path), "--tag", "Spring", "--json")
    assert code == 0, out
    return cli


def test_import_json_report(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(LIST, encoding="utf-8")
    code, out, _err = invoke(cli, "contacts", "import", str(path), "--dry-run", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["dry_run"] is True
    assert (report["created"], report["merged_duplicates"], report["invalid"]) == (2, 1, 1)
    assert report["invalid_rows"] == [
        {"file": "list.csv", "line": 4, "reason": report["invalid_rows"][0]["reason"]}
    ]
    assert invoke(cli, "contacts", "count")[1].strip() == "0"
    code, out, _err = invoke(cli, "contacts", "import", str(path), "-t", "Spring")
    assert code == 0
    assert "created                2" in out
    assert "list.csv:4:" in out


def test_import_errors_exit_2_with_one_line(cli: CliRunner, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    code, _out, err = invoke(cli, "contacts", "import", str(empty))
    assert code == 2
    assert err.strip().splitlines() == [err.strip()]
    assert "empty" in err
    names = tmp_path / "names.csv"
    names.write_text("name\nAnn\n")
    code, _out, err = invoke(cli, "contacts", "import", str(names))
    assert (code, "no email column" in err) == (2, True)
    code, _out, err = invoke(cli, "contacts", "import", str(names), "--map", "colour=name")
    assert (code, "invalid_mapping" in err) == (2, True)
    code, _out, err = invoke(cli, "contacts", "import", str(tmp_path / "missing.csv"))
    assert code == 2
    code, out, err = invoke(cli, "contacts", "import", str(names), "--map", "email=name", "--json")
    assert code == 0
    assert json.loads(out)["invalid"] == 1


def test_show_count_list_export(imported: CliRunner, tmp_path: Path) -> None:
    code, out, _err = invoke(imported, "contacts", "show", "ANA@example.com", "--json")
    assert code == 0
    shown = json.loads(out)
    assert (shown["status"], shown["tags"]) == ("subscribed", ["regulars", "Spring", "VIP"])
    assert shown["history"][0]["kind"] == "import"
    code, out, _err = invoke(imported, "contacts", "show", "ana@example.com")
    assert "status: subscribed" in out
    assert invoke(imported, "contacts", "count")[1] == "2\n"
    assert invoke(imported, "contacts", "count", "--tag", "vip")[1] == "1\n"
    assert invoke(imported, "contacts", "count", "--status", "unsubscribed")[1] == "0\n"
    assert invoke(imported, "contacts", "count", "--status", "happy")[0] == 2
    assert invoke(imported, "contacts", "count", "--tag", "nope")[0] == 2
    code, out, _err = invoke(imported, "contacts", "list", "--json", "--search", "ben")
    assert [c["email"] for c in json.loads(out)["items"]] == ["ben@example.com"]
    target = tmp_path / "out.csv"
    code, _out, _err = invoke(imported, "contacts", "export", "-o", str(target), "--tag", "Spring")
    assert code == 0
    assert len(target.read_text().splitlines()) == 3
    assert invoke(imported, "contacts", "show", "nobody@example.com")[0] == 2


def test_tag_untag_by_address_file_and_segment(imported: CliRunner, tmp_path: Path) -> None:
    code, out, err = invoke(imported, "contacts", "tag", "Autumn", "ana@example.com", "x@y.org")
    assert code == 0
    assert "tagged 1" in out
    assert "x@y.org" in err
    listing = tmp_path / "who.txt"
    listing.write_text("ben@example.com\nANA@example.com\n")
    code, out, _err = invoke(imported, "contacts", "tag", "autumn", "--file", str(listing))
    assert "tagged 1" in out
    table = tmp_path / "who.csv"
    table.write_text("Name;E-Mail\nBen;ben@example.com\n")
    code, out, _err = invoke(imported, "contacts", "untag", "AUTUMN", "--file", str(table))
    assert "untagged 1" in out
    assert invoke(imported, "segments", "create", "parisians", "--attr", "City=Paris")[0] == 0
    code, out, _err = invoke(imported, "contacts", "tag", "paris", "--segment", "parisians")
    assert "tagged 1" in out
    assert invoke(imported, "contacts", "count", "--segment", "parisians")[1] == "1\n"
    assert invoke(imported, "contacts", "tag", "nothing")[0] == 2


def test_unsubscribe_resubscribe_delete(imported: CliRunner) -> None:
    code, out, _err = invoke(imported, "contacts", "unsubscribe", "ben@example.com")
    assert (code, "unsubscribed" in out) == (0, True)
    assert invoke(imported, "contacts", "count", "--status", "unsubscribed")[1] == "1\n"
    # No new consent, no resubscribe: the option is required (usage error, exit 2).
    assert invoke(imported, "contacts", "resubscribe", "ben@example.com")[0] == 2
    code, _out, _err = invoke(
        imported,
        "contacts",
        "resubscribe",
        "ben@example.com",
        "--source",
        "signed form at the counter",
        "--wording",
        "Send me deals",
    )
    assert code == 0
    assert invoke(imported, "contacts", "count", "--status", "subscribed")[1] == "2\n"
    assert invoke(imported, "contacts", "delete", "ben@example.com", "--yes")[0] == 0
    assert invoke(imported, "contacts", "show", "ben@example.com")[0] == 2
    assert invoke(imported, "contacts", "delete", "ben@example.com", "--yes")[0] == 2


def test_segments_commands(imported: CliRunner) -> None:
    code, out, _err = invoke(
        imported, "segments", "create", "vips", "--tag-any", "VIP", "--status", "subscribed"
    )
    assert (code, "1 customers, 1 mailable" in out) == (0, True)
    assert invoke(imported, "segments", "create", "vips", "--tag-any", "x")[0] == 2
    assert invoke(imported, "segments", "count", "vips")[1] == "1\n"
    assert invoke(imported, "segments", "count", "vips", "--mailable")[1] == "1\n"
    code, out, _err = invoke(imported, "segments", "show", "vips", "--json")
    assert json.loads(out)["rules"] == {"tags_any": ["VIP"], "status": "subscribed"}
    code, out, _err = invoke(
        imported, "segments", "create", "early", "--rules", '{"opted_in_before": "2000-01-01"}'
    )
    assert code == 0
    assert invoke(imported, "segments", "count", "early")[1] == "0\n"
    assert invoke(imported, "segments", "create", "bad", "--rules", "{nope")[0] == 2
    assert invoke(imported, "segments", "create", "bad", "--rules", '{"colour": 1}')[0] == 2
    code, out, _err = invoke(imported, "segments", "list", "--json")
    assert [s["name"] for s in json.loads(out)] == ["early", "vips"]
    assert invoke(imported, "segments", "count", "missing")[0] == 2
    assert "tags_any" in invoke(imported, "segments", "conditions")[1]


def test_inspect_shows_the_mapping(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "k.csv"
    path.write_bytes("Vorname;E-Mail-Adresse;Ort\r\nJörg;j@example.de;Köln\r\n".encode("cp1252"))
    code, out, _err = invoke(cli, "contacts", "inspect", str(path))
    assert code == 0
    described = json.loads(out)[0]
    assert described["encoding"] == "cp1252"
    assert described["delimiter"] == ";"
    assert described["columns"] == {"email": ["E-Mail-Adresse"], "first_name": ["Vorname"]}
    assert described["attributes"] == ["Ort"]
