"""`dealmail segments create|list|show|count|delete`: saved audience rules."""

from __future__ import annotations

import json
from typing import Any

import typer

from dealmail.cli._common import cli_session, console, print_json
from dealmail.contacts import segments
from dealmail.contacts.rules import condition_kinds
from dealmail.errors import InvalidInput

segments_app = typer.Typer(help="Segments: saved, named audience rules.", no_args_is_help=True)


def _rules_from_options(
    rules_json: str | None,
    tag_any: list[str],
    tag_all: list[str],
    tag_none: list[str],
    status: list[str],
    opted_in_after: str | None,
    opted_in_before: str | None,
    attrs: list[str],
) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    if rules_json:
        try:
            parsed = json.loads(rules_json)
        except ValueError as exc:
            raise InvalidInput(f"--rules is not JSON: {exc}", code="invalid_rules") from None
        if not isinstance(parsed, dict):
            raise InvalidInput("--rules must be a JSON object", code="invalid_rules")
        rules.update(parsed)
    for key, values in (("tags_any", tag_any), ("tags_all", tag_all), ("tags_none", tag_none)):
        if values:
            rules[key] = values
    if status:
        rules["status"] = status if len(status) > 1 else status[0]
    if opted_in_after:
        rules["opted_in_after"] = opted_in_after
    if opted_in_before:
        rules["opted_in_before"] = opted_in_before
    if attrs:
        pairs: dict[str, str] = dict(rules.get("attrs") or {})
        for pair in attrs:
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise InvalidInput(f"--attr {pair!r}: expected KEY=VALUE", code="invalid_rules")
            pairs[key.strip()] = value.strip()
        rules["attrs"] = pairs
    return rules


@segments_app.command("create")
def create_command(
    name: str,
    tag_any: list[str] = typer.Option([], "--tag-any", help="Has at least one of these tags."),
    tag_all: list[str] = typer.Option([], "--tag-all", help="Has all of these tags."),
    tag_none: list[str] = typer.Option([], "--tag-none", help="Has none of these tags."),
    status: list[str] = typer.Option([], "--status", help="subscribed, unsubscribed, bounced…"),
    opted_in_after: str | None = typer.Option(
        None, "--opted-in-after", help="Consent on or after (ISO date or datetime, UTC)."
    ),
    opted_in_before: str | None = typer.Option(
        None, "--opted-in-before", help="Consent before (ISO date or datetime, UTC)."
    ),
    attr: list[str] = typer.Option([], "--attr", metavar="KEY=VALUE", help="Attribute equals."),
    rules_json: str | None = typer.Option(
        None, "--rules", help="The rules as a JSON object (options above add to it)."
    ),
    replace: bool = typer.Option(False, "--replace", help="Overwrite a segment of that name."),
) -> None:
    """Save a segment. All conditions given must hold."""
    rules = _rules_from_options(
        rules_json, tag_any, tag_all, tag_none, status, opted_in_after, opted_in_before, attr
    )
    with cli_session() as session:
        segments.create_segment(session, name, rules, replace=replace)
        view = segments.show_segment(session, name)
    console.print(
        f"segment {view.name!r}: {view.members} customers, {view.mailable} mailable",
        highlight=False,
    )


@segments_app.command("list")
def list_command(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every segment with its size."""
    with cli_session() as session:
        views = segments.list_segments(session)
    if as_json:
        print_json([v.as_dict() for v in views])
        return
    for v in views:
        console.print(
            f"{v.name:30} {v.members:>8} customers {v.mailable:>8} mailable  "
            f"{json.dumps(v.rules, ensure_ascii=False)}",
            highlight=False,
            markup=False,
        )


@segments_app.command("show")
def show_command(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """A segment's rules and size."""
    with cli_session() as session:
        view = segments.show_segment(session, name)
    if as_json:
        print_json(view.as_dict())
        return
    console.print(f"segment {view.name}", highlight=False, markup=False)
    console.print(
        f"rules: {json.dumps(view.rules, ensure_ascii=False)}", highlight=False, markup=False
    )
    console.print(f"customers: {view.members}, mailable: {view.mailable}", highlight=False)


@segments_app.command("count")
def count_command(
    name: str,
    mailable: bool = typer.Option(
        False, "--mailable", help="Only those a campaign would reach (subscribed, not suppressed)."
    ),
) -> None:
    """Print the number of customers in a segment."""
    with cli_session() as session:
        typer.echo(segments.count_segment(session, name, mailable=mailable))


@segments_app.command("delete")
def delete_command(name: str) -> None:
    """Delete a segment (a campaign whose audience names it will then fail its checks)."""
    with cli_session() as session:
        segments.delete_segment(session, name)
    console.print(f"segment {name!r} deleted", highlight=False)


@segments_app.command("conditions")
def conditions_command() -> None:
    """The condition kinds --rules accepts."""
    for kind in condition_kinds():
        typer.echo(kind)


def register(app: typer.Typer) -> None:
    app.add_typer(segments_app, name="segments")
