"""`dealmail contacts …`: import, show, count, list, tag, untag, unsubscribe, resubscribe,
delete, export."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from sqlalchemy.orm import Session

from dealmail.cli._common import cli_session, console, err_console, print_json
from dealmail.cli._groups import contacts_app
from dealmail.contacts import queries, service
from dealmail.contacts.columns import FIELD_HELP, parse_overrides
from dealmail.contacts.consent import ConsentProof
from dealmail.contacts.csvread import UnreadableFile, detect_format, read_records
from dealmail.contacts.export import write_csv
from dealmail.contacts.importer import ImportReport, import_contacts, inspect_files
from dealmail.errors import InvalidInput

_MAP_HELP = "Take FIELD from COLUMN (repeatable; empty COLUMN: the file has none). FIELDs: " + (
    "; ".join(f"{name}: {text}" for name, text in FIELD_HELP.items())
)


@contacts_app.command("import")
def import_command(
    files: list[Path] = typer.Argument(..., help="CSV files (UTF-8/UTF-16/Windows-1252; , ; tab)."),
    tag: list[str] = typer.Option([], "--tag", "-t", help="Tag every imported customer."),
    mapping: list[str] = typer.Option([], "--map", metavar="FIELD=COLUMN", help=_MAP_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Do everything, then roll back."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Import customers: dedupe by address, merge duplicates, respect consent, all or nothing.

    Nobody who unsubscribed or is suppressed is re-subscribed. Rows an export marks as not
    accepting marketing are skipped; unsubscribed/cleaned rows suppress the address.
    Columns are found by their usual names (Mailchimp, Shopify, Square, spreadsheets in
    English, German, French…); other columns become attributes.
    """
    overrides = parse_overrides(mapping)
    formats = inspect_files(files, overrides)
    if not as_json:
        for fmt in formats:
            found = ", ".join(f"{k}={'+'.join(v)}" for k, v in fmt.columns.column_names().items())
            err_console.print(
                f"{fmt.path.name}: {fmt.encoding}, delimiter {fmt.describe()['delimiter']!s}, "
                f"columns {found}",
                highlight=False,
                markup=False,
            )
    with cli_session() as session:
        if sys.stderr.isatty() and not as_json:
            report = _import_with_progress(session, files, tag, overrides, dry_run)
        else:
            report = import_contacts(session, files, tags=tag, overrides=overrides, dry_run=dry_run)
    if as_json:
        print_json(report.as_dict())
    else:
        _print_report(report)


def _import_with_progress(
    session: Session,
    files: list[Path],
    tags: list[str],
    overrides: dict[str, str | None],
    dry_run: bool,
) -> ImportReport:
    """A bar by bytes read on stderr (a terminal only); it says "merging" once all is read."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    total = sum(p.stat().st_size for p in files)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("reading", total=total)

        def tick(done: int) -> None:
            bar.update(task, completed=done, description="merging" if done >= total else "reading")

        return import_contacts(
            session, files, tags=tags, overrides=overrides, dry_run=dry_run, progress=tick
        )


def _print_report(report: ImportReport) -> None:
    lines = [
        ("rows read", report.rows),
        ("created", report.created),
        ("updated", report.updated),
        ("merged duplicates", report.merged_duplicates),
        ("invalid", report.invalid),
        ("skipped for consent", report.skipped_consent),
        ("skipped, suppressed", report.skipped_suppressed),
        ("unsubscribed by file", report.withdrawn),
    ]
    for label, value in lines:
        console.print(f"{label:22} {value}", highlight=False)
    for row in report.invalid_rows[:20]:
        console.print(
            f"  {row['file']}:{row['line']}: {row['reason']}", highlight=False, markup=False
        )
    if report.invalid > 20:
        console.print(f"  … and {report.invalid - 20} more invalid rows (see --json)")
    if report.dry_run:
        console.print("dry run: nothing was written")


@contacts_app.command("inspect")
def inspect_command(
    files: list[Path] = typer.Argument(...),
    mapping: list[str] = typer.Option([], "--map", metavar="FIELD=COLUMN", help=_MAP_HELP),
) -> None:
    """Show how files would be read (encoding, delimiter, columns) without importing."""
    print_json([f.describe() for f in inspect_files(files, parse_overrides(mapping))])


@contacts_app.command("show")
def show_command(
    email: str, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """A customer's status, names, tags and consent history."""
    with cli_session() as session:
        view = queries.customer_by_email(session, email)
    data = view.as_dict()
    if as_json:
        print_json(data)
        return
    name = " ".join(p for p in (view.first_name, view.last_name) if p)
    console.print(f"{view.email}  {name}", highlight=False, markup=False)
    console.print(f"status: {view.status}{' (suppressed)' if view.suppressed else ''}")
    console.print(f"tags: {', '.join(view.tags) or '-'}", highlight=False, markup=False)
    consent = data["consent"]
    console.print(
        f"consent: {consent['at'] or '-'} from {consent['source'] or '-'}",
        highlight=False,
        markup=False,
    )
    for key, value in view.attributes.items():
        console.print(f"  {key}: {value}", highlight=False, markup=False)
    for event in data["history"]:
        console.print(
            f"  {event['at']}  {event['kind']:12} {event['source'] or ''}",
            highlight=False,
            markup=False,
        )


@contacts_app.command("count")
def count_command(
    status: str | None = typer.Option(None, help="subscribed, unsubscribed, bounced…"),
    tag: str | None = typer.Option(None, help="Only customers with this tag."),
    segment: str | None = typer.Option(None, help="Only customers in this segment."),
) -> None:
    """Print the number of customers matching every option given."""
    with cli_session() as session:
        typer.echo(queries.count_customers(session, status=status, tag=tag, segment=segment))


@contacts_app.command("list")
def list_command(
    search: str | None = typer.Option(None, help="Part of the address or a name."),
    status: str | None = typer.Option(None),
    tag: str | None = typer.Option(None),
    segment: str | None = typer.Option(None),
    limit: int = typer.Option(50, min=1, max=queries.PAGE_MAX),
    offset: int = typer.Option(0, min=0),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A page of customers, newest first."""
    with cli_session() as session:
        page = queries.list_customers(
            session,
            search=search,
            status=status,
            tag=tag,
            segment=segment,
            limit=limit,
            offset=offset,
        )
    if as_json:
        print_json(
            {
                "total": page.total,
                "limit": page.limit,
                "offset": page.offset,
                "items": [c.as_dict() for c in page.items],
            }
        )
        return
    for c in page.items:
        name = " ".join(p for p in (c.first_name, c.last_name) if p)
        console.print(
            f"{c.email:40} {c.status:12} {name:30} {', '.join(c.tags)}",
            highlight=False,
            markup=False,
        )
    shown = f"{page.offset + 1}-{page.offset + len(page.items)}" if page.items else "none"
    console.print(f"{shown} of {page.total}", highlight=False)


def _addresses(emails: list[str], file: Path | None) -> list[str] | None:
    """Addresses from the command line and/or a file (a CSV with an email column, or one
    address per line)."""
    if file is None:
        return emails or None
    found = list(emails)
    try:
        fmt = detect_format(file)
    except UnreadableFile:
        try:
            text = file.read_text(encoding="utf-8-sig", errors="replace")
        except OSError as exc:
            raise InvalidInput(f"{file}: {exc.strerror or exc}", code="unreadable_file") from None
        found += [line.strip() for line in text.splitlines() if "@" in line]
        if len(found) == len(emails):
            raise
        return found
    column = fmt.columns.fields["email"][0]
    found += [cells[column] for _line, cells in read_records(fmt) if column < len(cells)]
    return found


@contacts_app.command("tag")
def tag_command(
    tag: str = typer.Argument(..., help="Tag name (case-insensitive; created if new)."),
    emails: list[str] = typer.Argument(None, help="Addresses."),
    file: Path | None = typer.Option(None, "--file", help="CSV or list of addresses."),
    segment: str | None = typer.Option(None, "--segment", help="Everyone in this segment."),
) -> None:
    """Tag customers given by address, by file or by segment."""
    with cli_session() as session:
        result = service.tag_customers(
            session, tag, emails=_addresses(emails or [], file), segment=segment
        )
    console.print(f"tagged {result.changed} customers with {result.tag!r}", highlight=False)
    for missing in result.not_found:
        err_console.print(f"no customer: {missing}", highlight=False, markup=False)


@contacts_app.command("untag")
def untag_command(
    tag: str = typer.Argument(...),
    emails: list[str] = typer.Argument(None, help="Addresses."),
    file: Path | None = typer.Option(None, "--file", help="CSV or list of addresses."),
    segment: str | None = typer.Option(None, "--segment", help="Everyone in this segment."),
) -> None:
    """Remove a tag from customers given by address, by file or by segment."""
    with cli_session() as session:
        result = service.untag_customers(
            session, tag, emails=_addresses(emails or [], file), segment=segment
        )
    console.print(f"untagged {result.changed} customers from {result.tag!r}", highlight=False)
    for missing in result.not_found:
        err_console.print(f"no customer: {missing}", highlight=False, markup=False)


@contacts_app.command("unsubscribe")
def unsubscribe_command(
    email: str,
    source: str = typer.Option("cli", help="Where the request came from."),
) -> None:
    """Unsubscribe and suppress an address (known customer or not)."""
    with cli_session() as session:
        changed = service.unsubscribe(session, email, source=source)
    console.print(
        f"{email}: {'unsubscribed' if changed else 'already unsubscribed'}",
        highlight=False,
        markup=False,
    )


@contacts_app.command("resubscribe")
def resubscribe_command(
    email: str,
    source: str = typer.Option(
        ..., help="Where the NEW consent was given (form URL, signed paper at the counter…)."
    ),
    wording: str | None = typer.Option(None, help="The consent text the person agreed to."),
    ip: str | None = typer.Option(None, help="IP address the consent came from."),
) -> None:
    """Subscribe again someone who left, only with a new consent record."""
    with cli_session() as session:
        customer = service.resubscribe(
            session, email, ConsentProof(source=source, wording=wording, ip=ip)
        )
        address = customer.email
    console.print(f"{address}: subscribed again", highlight=False, markup=False)


@contacts_app.command("delete")
def delete_command(
    email: str,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Erase a customer's personal data; the address stays suppressed (as a hash)."""
    if not yes and not typer.confirm(f"erase {email} for good?"):
        raise typer.Exit(1)
    with cli_session() as session:
        service.delete_customer(session, email)
    console.print(f"{email}: deleted (suppressed)", highlight=False, markup=False)


@contacts_app.command("export")
def export_command(
    output: Path | None = typer.Option(None, "--output", "-o", help="File (default: stdout)."),
    status: str | None = typer.Option(None),
    tag: str | None = typer.Option(None),
    segment: str | None = typer.Option(None),
) -> None:
    """Customers as CSV (cells a spreadsheet would run as formulas are neutralised)."""
    with cli_session() as session:
        rows = queries.export_rows(session, status=status, tag=tag, segment=segment)
        if output is None:
            count = write_csv(rows, sys.stdout)
        else:
            with output.open("w", encoding="utf-8", newline="") as out:
                count = write_csv(rows, out)
    if output is not None:
        err_console.print(f"{count} customers written to {output}", highlight=False)


def register(app: typer.Typer) -> None:
    """Commands live on the shared contacts_app, which cli.core adds to the root."""
