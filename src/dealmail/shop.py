"""The owner's settings (shop identity, sender, public URL, limits): typed, validated, in the DB."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from dealmail.errors import InvalidInput
from dealmail.models import Setting


class ShopSettings(BaseModel):
    """Every key `dealmail settings set` accepts; new capabilities add their keys here."""

    shop_name: str = "My Shop"
    sender_name: str | None = None
    sender_email: str | None = None
    reply_to: str | None = None
    postal_address: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    timezone: str = "UTC"
    # Delivery limits (0 means unlimited), shared by every worker.
    rate_per_second: float = 0
    rate_per_hour: int = 0
    rate_per_day: int = 0
    max_connections: int = 4
    warmup_start_per_day: int = 0
    warmup_started_on: str | None = None
    email_backend: str | None = None

    @field_validator("sender_email", "reply_to")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (try Europe/London)") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


SETTING_KEYS = tuple(ShopSettings.model_fields)


def get_shop_settings(session: Session) -> ShopSettings:
    stored = {row.key: row.value.get("v") for row in session.scalars(select(Setting))}
    return ShopSettings.model_validate(
        {key: value for key, value in stored.items() if key in SETTING_KEYS}
    )


def set_settings(session: Session, values: dict[str, Any]) -> ShopSettings:
    """Validate the new values together with the stored ones, then save them in one commit."""
    unknown = sorted(set(values) - set(SETTING_KEYS))
    if unknown:
        raise InvalidInput(
            f"unknown setting {', '.join(unknown)}; known: {', '.join(SETTING_KEYS)}",
            code="unknown_setting",
        )
    current = get_shop_settings(session).model_dump()
    current.update(values)
    try:
        validated = ShopSettings.model_validate(current)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(f"{field}: {first['msg']}", code="invalid_setting") from exc
    for key in values:
        row = session.get(Setting, key)
        value = getattr(validated, key)
        if row is None:
            session.add(Setting(key=key, value={"v": value}))
        else:
            row.value = {"v": value}
    session.commit()
    return validated
