"""`dealmail campaigns create|edit|list|show|check|preview|test-send`: authoring campaigns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dealmail.campaigns import preflight, preview, service
from dealmail.cli._common import cli_session, console, print_json
from dealmail.cli._groups import campaigns_app
from dealmail.config import get_settings
from dealmail.errors import InvalidInput

EXIT_NOT_READY = 1


def _read(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {what} {path}: {exc}", code="unreadable_file") from None


def _audience(
    tags: list[str] | None, match: str | None, segment: str | None, everyone: bool
) -> dict[str, Any] | None:
    chosen = sum(bool(x) for x in (tags, segment, everyone))
    if chosen > 1:
        raise InvalidInput("choose --tag, --segment or --everyone", code="conflicting_audience")
    if segment:
        return {"segment": segment}
    if tags:
        return {"tags": list(tags), "match": match or "any"}
    if match:
        raise InvalidInput("--match goes with --tag", code="conflicting_audience")
    if everyone:
        return {}
    return None


def _input(
    *,
    subject: str | None,
    preheader: str | None,
    deal: str | None,
    audience: dict[str, Any] | None,
    theme: str | None,
    html: Path | None,
    body: Path | None,
    heading: str | None,
    image_url: str | None,
    image_alt: str | None,
    button_text: str | None,
    button_url: str | None,
    from_name: str | None,
    from_email: str | None,
    reply_to: str | None,
) -> service.CampaignInput:
    if html is not None and body is not None:
        raise InvalidInput(
            "--body fills a theme; custom HTML (--html) carries its own body",
            code="conflicting_template",
        )
    return service.CampaignInput(
        subject=subject,
        preheader=preheader,
        deal=deal,
        audience=audience,
        theme=theme,
        html_template=_read(html, "--html"),
        body_markdown=_read(body, "--body"),
        heading=heading,
        image_url=image_url,
        image_alt=image_alt,
        button_text=button_text,
        button_url=button_url,
        from_name=from_name,
        from_email=from_email,
        reply_to=reply_to,
    )


SUBJECT = typer.Option(None, "--subject", help="Subject; may use fields like {{ first_name }}.")
PREHEADER = typer.Option(None, "--preheader", help="Inbox preview text after the subject.")
DEAL = typer.Option(None, "--deal", help="Deal name (its coupon goes in every message).")
TAG = typer.Option(None, "--tag", help="Audience: customers with this tag (repeatable).")
MATCH = typer.Option(None, "--match", help="With several --tag: any (default) or all.")
SEGMENT = typer.Option(None, "--segment", help="Audience: a saved segment.")
THEME = typer.Option(None, "--theme", help="Built-in theme: classic or spotlight.")
HTML = typer.Option(None, "--html", help="Custom HTML template file (Jinja fields).")
BODY = typer.Option(None, "--body", help="Markdown body file for a theme.")
HEADING = typer.Option(None, "--heading", help="Theme heading.")
IMAGE = typer.Option(None, "--image-url", help="Theme hero image (https URL).")
IMAGE_ALT = typer.Option(None, "--image-alt", help="The hero image's alt text.")
BUTTON_TEXT = typer.Option(None, "--button-text", help="Call-to-action label.")
BUTTON_URL = typer.Option(None, "--button-url", help="Call-to-action link.")
FROM_NAME = typer.Option(None, "--from-name", help="From name (default: shop's sender_name).")
FROM_EMAIL = typer.Option(None, "--from-email", help="From address (default: sender_email).")
REPLY_TO = typer.Option(None, "--reply-to", help="Reply-To address.")


@campaigns_app.command("create")
def campaigns_create(
    name: str,
    subject: str = typer.Option(..., "--subject", help="Subject; may use {{ first_name }}."),
    deal: str = DEAL,
    tag: list[str] = TAG,
    match: str = MATCH,
    segment: str = SEGMENT,
    theme: str = THEME,
    html: Path = HTML,
    body: Path = BODY,
    preheader: str = PREHEADER,
    heading: str = HEADING,
    image_url: str = IMAGE,
    image_alt: str = IMAGE_ALT,
    button_text: str = BUTTON_TEXT,
    button_url: str = BUTTON_URL,
    from_name: str = FROM_NAME,
    from_email: str = FROM_EMAIL,
    reply_to: str = REPLY_TO,
) -> None:
    """Create a draft campaign NAME (audience: every subscriber unless --tag or --segment)."""
    data = _input(
        subject=subject,
        preheader=preheader,
        deal=deal,
        audience=_audience(tag, match, segment, everyone=False) or {},
        theme=theme,
        html=html,
        body=body,
        heading=heading,
        image_url=image_url,
        image_alt=image_alt,
        button_text=button_text,
        button_url=button_url,
        from_name=from_name,
        from_email=from_email,
        reply_to=reply_to,
    )
    with cli_session() as session:
        campaign = service.create_campaign(session, name, data)
        status = campaign.status
    console.print(f"campaign {name} created ({status}); next: dealmail campaigns check {name}")


@campaigns_app.command("edit")
def campaigns_edit(
    name: str,
    subject: str = SUBJECT,
    deal: str = typer.Option(None, "--deal", help='Deal name; "" removes the deal.'),
    tag: list[str] = TAG,
    match: str = MATCH,
    segment: str = SEGMENT,
    everyone: bool = typer.Option(False, "--everyone", help="Audience: every subscriber."),
    theme: str = THEME,
    html: Path = HTML,
    body: Path = BODY,
    preheader: str = PREHEADER,
    heading: str = HEADING,
    image_url: str = IMAGE,
    image_alt: str = IMAGE_ALT,
    button_text: str = BUTTON_TEXT,
    button_url: str = BUTTON_URL,
    from_name: str = FROM_NAME,
    from_email: str = FROM_EMAIL,
    reply_to: str = REPLY_TO,
) -> None:
    """Change a draft, scheduled or paused campaign; options not given stay as they are."""
    data = _input(
        subject=subject,
        preheader=preheader,
        deal=deal,
        audience=_audience(tag, match, segment, everyone),
        theme=theme,
        html=html,
        body=body,
        heading=heading,
        image_url=image_url,
        image_alt=image_alt,
        button_text=button_text,
        button_url=button_url,
        from_name=from_name,
        from_email=from_email,
        reply_to=reply_to,
    )
    with cli_session() as session:
        service.edit_campaign(session, name, data)
    console.print(f"campaign {name} updated")


@campaigns_app.command("list")
def campaigns_list(
    status: str = typer.Option(None, "--status", help="Only campaigns in this status."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List campaigns."""
    with cli_session() as session:
        rows = [
            service.describe_campaign(session, c) for c in service.list_campaigns(session, status)
        ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(
            f"{row['name']:24} {row['status']:10} {row['deal'] or '-':16} {row['subject']}",
        )


@campaigns_app.command("show")
def campaigns_show(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show campaign NAME."""
    with cli_session() as session:
        row = service.describe_campaign(session, service.get_campaign(session, name))
    if as_json:
        print_json(row)
        return
    for key, value in row.items():
        shown = "" if value is None else value
        typer.echo(f"{key:16} {shown}")


@campaigns_app.command("check")
def campaigns_check(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Preflight: what blocks sending (exit 1) and what only warns."""
    with cli_session() as session:
        campaign = service.get_campaign(session, name)
        report = preflight.run_preflight(session, campaign, get_settings())
    if as_json:
        print_json(report.as_dict())
    else:
        if report.audience_size is not None:
            typer.echo(f"audience: {report.audience_size} customers")
        for finding in report.blocking:
            typer.echo(f"BLOCKING {finding.code}: {finding.message}")
        for finding in report.warnings:
            typer.echo(f"warning  {finding.code}: {finding.message}")
        typer.echo("ready to send" if report.ready else "not ready: fix the BLOCKING items")
    if not report.ready:
        raise typer.Exit(EXIT_NOT_READY)


@campaigns_app.command("preview")
def campaigns_preview(
    name: str,
    out: Path = typer.Option(..., "--out", help="Where to write the HTML."),
    customer: str = typer.Option(None, "--customer", help="Render for this customer's address."),
) -> None:
    """Write the HTML a customer would get (QR inlined as a data: image) to --out."""
    with cli_session() as session:
        html = preview.preview_html(session, name, get_settings(), customer_email=customer)
    try:
        out.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {out}: {exc}", code="unwritable_file") from None
    console.print(f"preview written to {out}", highlight=False)


@campaigns_app.command("test-send")
def campaigns_test_send(
    name: str,
    to: str = typer.Option(..., "--to", help="Address to send the test to."),
    customer: str = typer.Option(None, "--customer", help="Fill fields from this customer."),
) -> None:
    """Send NAME to --to through the configured backend, with a never-redeemable test coupon."""
    with cli_session() as session:
        result = preview.send_test(session, name, to, get_settings(), customer_email=customer)
    console.print(
        f"test message {result.message_id} sent to {result.to} via {result.backend}",
        highlight=False,
    )
    if result.short_code:
        console.print(f"test coupon {result.short_code}: {result.coupon_url}", highlight=False)
