"""`dealmail init`: data directory, secret key, database schema and the first admin user."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dealmail import accounts
from dealmail.config import Settings, write_secret_file
from dealmail.db import get_engine, migrate, session_scope

FIRST_ADMIN = "admin"


@dataclass(frozen=True)
class InitResult:
    data_dir: Path
    database_url: str
    secret_created: bool
    admin_username: str | None
    admin_password: str | None


def initialise(settings: Settings) -> InitResult:
    """Idempotent: creates only what is missing; refuses a placeholder secret."""
    data_dir = settings.resolved_data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    secret_created = False
    if settings.secret_key is None:
        secret_created = write_secret_file(settings.secret_key_path)
    settings.secret_key_bytes()  # raises on a placeholder or missing key
    migrate(settings.resolved_database_url)
    admin_password = None
    with session_scope(get_engine(settings)) as session:
        if accounts.count_users(session) == 0:
            created = accounts.add_user(session, FIRST_ADMIN)
            admin_password = created.password
    return InitResult(
        data_dir=data_dir,
        database_url=settings.resolved_database_url,
        secret_created=secret_created,
        admin_username=FIRST_ADMIN if admin_password else None,
        admin_password=admin_password,
    )
