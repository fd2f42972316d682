"""Which column holds what: header names in spreadsheets and Mailchimp, Shopify, Square exports.

Pure functions: header matching, `--map FIELD=COLUMN` overrides, and reading the consent, time
and tag cells of a row.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dealmail.errors import InvalidInput


class Consent(enum.IntEnum):
    """What a row says about marketing email; a higher value wins when one address repeats."""

    NONE = 0  # never agreed (Shopify "Accepts Email Marketing" = no, pending, unknown value)
    OPT_IN = 1
    BOUNCE = 2  # Mailchimp "cleaned"
    COMPLAINT = 3
    UNSUBSCRIBE = 4

    @property
    def withdrawal_reason(self) -> str | None:
        return {4: "unsubscribe", 3: "complaint", 2: "bounce"}.get(self.value)


# Fields the importer fills, and the header names (normalised: lower-case letters and digits,
# accents dropped) that mean each, best first.
FIELD_HEADERS: dict[str, tuple[str, ...]] = {
    "email": (
        "email", "emailaddress", "mail", "email1", "emailadresse", "mailadresse", "courriel",
        "adresseemail", "adressemail", "adresseelectronique", "correo", "correoelectronico",
        "emailaddr", "customeremail", "primaryemail",
    ),
    "first_name": (
        "firstname", "first", "givenname", "forename", "vorname", "prenom", "nombre",
        "voornaam", "nome",
    ),
    "last_name": (
        "lastname", "last", "surname", "familyname", "nachname", "familienname", "nom",
        "nomdefamille", "apellido", "apellidos", "achternaam", "cognome",
    ),
    "phone": (
        "phone", "phonenumber", "telephone", "tel", "mobile", "mobilephone", "mobilenumber",
        "cell", "cellphone", "telefon", "telefonnummer", "handy", "mobil", "portable",
        "numerodetelephone", "telefono", "defaultaddressphone",
    ),
    "tags": ("tags", "tag", "labels", "label", "schlagworte", "etiquettes", "etiquetas"),
    "opt_in_time": (
        "optintime", "confirmtime", "optindate", "consentdate", "consentat", "consenttime",
        "subscribedat", "subscriptiondate", "signupdate", "signedupat",
        "emailmarketingconsentupdatedat",
    ),
    "opt_in_ip": ("optinip", "confirmip", "consentip", "signupip", "ipaddress", "ip"),
    "consent": (
        "acceptsemailmarketing", "acceptsmarketing", "emailsubscriptionstatus",
        "emailmarketingconsent", "emailmarketingstatus", "emailmarketing", "subscriptionstatus",
        "marketingconsent", "newsletter", "subscribed", "emailoptin", "consent", "memberstatus",
        "status", "einwilligung", "newsletterstatus",
    ),
    "unsubscribed_at": (
        "unsubtime", "unsubscribedat", "unsubscribetime", "optouttime", "optoutdate",
    ),
    "cleaned_at": ("cleantime", "cleanedat", "bouncedat"),
}  # fmt: skip
FIELD_HELP = {
    "email": "the address (required)",
    "first_name": "given name",
    "last_name": "family name",
    "phone": "phone number",
    "tags": "tags, several separated by commas or semicolons",
    "opt_in_time": "when the person opted in (else the import time)",
    "opt_in_ip": "IP address the opt-in came from",
    "consent": "subscription status / accepts marketing (yes, subscribed, unsubscribed, cleaned…)",
    "unsubscribed_at": "a time here means the person unsubscribed (Mailchimp UNSUB_TIME)",
    "cleaned_at": "a time here means the address bounced (Mailchimp CLEAN_TIME)",
}
# Fields whose value may come from the first non-empty of several columns (Mailchimp has
# OPTIN_TIME, often empty, and CONFIRM_TIME).
MULTI_COLUMN_FIELDS = frozenset({"opt_in_time", "opt_in_ip"})

CONSENT_VALUES: dict[str, Consent] = {
    **dict.fromkeys(
        ("subscribed", "yes", "y", "true", "1", "ja", "j", "oui", "si", "optedin", "optin",
         "confirmed", "active", "x", "abonniert", "angemeldet", "inscrit", "abonne", "granted",
         "accepted", "singleoptin", "doubleoptin", "subscriber"),
        Consent.OPT_IN,
    ),
    **dict.fromkeys(
        ("unsubscribed", "unsubscribe", "optedout", "optout", "abgemeldet", "desinscrit",
         "desabonne", "revoked", "withdrawn"),
        Consent.UNSUBSCRIBE,
    ),
    **dict.fromkeys(
        ("cleaned", "bounced", "hardbounce", "bounce", "invalid", "undeliverable"), Consent.BOUNCE
    ),
    **dict.fromkeys(
        ("complained", "complaint", "spam", "abuse", "spamcomplaint", "reportedspam"),
        Consent.COMPLAINT,
    ),
}  # fmt: skip

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_TAG_SPLIT = re.compile(r"[,;|\n]")
TAG_MAX = 100


def normalise_header(name: str) -> str:
    """'E-Mail-Adresse' → 'emailadresse', 'Prénom' → 'prenom', 'OPTIN_TIME' → 'optintime'."""
    decomposed = unicodedata.normalize("NFKD", name.strip().lower())
    return _NOT_ALNUM.sub("", "".join(c for c in decomposed if not unicodedata.combining(c)))


@dataclass(frozen=True)
class ColumnMap:
    """Field → column indexes (several only for MULTI_COLUMN_FIELDS); the rest are attributes."""

    header: tuple[str, ...]
    fields: dict[str, tuple[int, ...]]
    attributes: tuple[tuple[int, str], ...] = field(default=())

    def column_names(self) -> dict[str, list[str]]:
        return {f: [self.header[i] for i in idx] for f, idx in self.fields.items()}


_FIELD_NAMES = {
    **{normalise_header(f): f for f in FIELD_HEADERS},
    "status": "consent",
    "acceptsmarketing": "consent",
    "mail": "email",
}


def parse_overrides(pairs: list[str]) -> dict[str, str | None]:
    """`FIELD=COLUMN` pairs; an empty COLUMN means "this file has no such column"."""
    overrides: dict[str, str | None] = {}
    for pair in pairs:
        name, sep, column = pair.partition("=")
        key = _FIELD_NAMES.get(normalise_header(name), "")
        if not sep or not key:
            raise InvalidInput(
                f"--map {pair!r}: expected FIELD=COLUMN with FIELD one of "
                f"{', '.join(FIELD_HEADERS)}",
                code="invalid_mapping",
            )
        overrides[key] = column.strip() or None
    return overrides


def map_columns(header: list[str], overrides: dict[str, str | None] | None = None) -> ColumnMap:
    """Find each field's column by its usual names; overrides name a column per field."""
    overrides = overrides or {}
    names = [normalise_header(h) for h in header]
    used: set[int] = set()
    fields: dict[str, tuple[int, ...]] = {}
    for name, column in overrides.items():
        if column is None:
            fields[name] = ()
            continue
        wanted = normalise_header(column)
        matches = [i for i, h in enumerate(header) if h.strip() == column] or [
            i for i, n in enumerate(names) if n == wanted and wanted
        ]
        if not matches:
            raise InvalidInput(
                f"--map {name}={column}: no such column; the columns are: "
                + ", ".join(h for h in header if h.strip()),
                code="invalid_mapping",
            )
        fields[name] = (matches[0],)
        used.add(matches[0])
    for name, synonyms in FIELD_HEADERS.items():
        if name in fields:
            continue
        found: list[int] = []
        for synonym in synonyms:
            found += [i for i, n in enumerate(names) if n == synonym and i not in used]
            if found and name not in MULTI_COLUMN_FIELDS:
                break
        found = list(dict.fromkeys(found))
        if name not in MULTI_COLUMN_FIELDS:
            found = found[:1]
        used.update(found)
        fields[name] = tuple(found)
    fields = {name: idx for name, idx in fields.items() if idx}
    attributes: list[tuple[int, str]] = []
    seen: set[str] = set()
    for i, h in enumerate(header):
        label = h.strip()
        if i in used or not label:
            continue
        key, n = label, 2
        while key in seen:
            key, n = f"{label}_{n}", n + 1
        seen.add(key)
        attributes.append((i, key))
    return ColumnMap(tuple(header), fields, tuple(attributes))


def consent_of(value: str) -> Consent:
    """A consent cell's meaning; anything unrecognised counts as no consent (the safe side)."""
    return CONSENT_VALUES.get(_NOT_ALNUM.sub("", value.strip().lower()), Consent.NONE)


_DAY_FIRST = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d/%m/%Y %H:%M:%S",
              "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d-%m-%Y")  # fmt: skip
_MONTH_FIRST = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M %p", "%m/%d/%Y",
                "%m/%d/%y", "%Y-%m-%d %H:%M:%S %z", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d")  # fmt: skip


def parse_time(value: str, *, not_after: datetime) -> datetime | None:
    """An opt-in time as exports write it (ISO, Mailchimp, Shopify, d.m.Y, m/d/Y); naive means
    UTC. None if unreadable or in the future."""
    text = value.strip()
    if not text:
        return None
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = parse_loose_time(text)
    if parsed is None:
        return None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return None if parsed > not_after else parsed


def parse_loose_time(text: str) -> datetime | None:
    head = text.split("/", 1)[0]
    # 13/02/2024 can only be day-first; 02/13/2024 only month-first; ambiguous ones follow the
    # US exports (Shopify, Square) unless dots say German.
    formats = _DAY_FIRST + _MONTH_FIRST
    if head.isascii() and head.isdigit() and int(head) <= 12:
        formats = _MONTH_FIRST + _DAY_FIRST
    for pattern in formats:
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


def split_tags(value: str) -> list[str]:
    """'VIP, "Newsletter";regulars' → ['VIP', 'Newsletter', 'regulars']."""
    tags = []
    for part in _TAG_SPLIT.split(value):
        tag = " ".join(part.strip().strip("\"'").split())[:TAG_MAX]
        if tag:
            tags.append(tag)
    return tags
