"""Shared fixtures: settings in a temporary data directory, and a migrated database per test.

Database tests run on SQLite always and on PostgreSQL when DEALMAIL_TEST_DATABASE_URL is set.
Each PostgreSQL test run gets its own schema, so parallel runs never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from dealmail.config import Settings, reset_settings_cache
from dealmail.db import (
    dispose_engine,
    dispose_engines,
    get_engine,
    migrate,
    normalise_url,
    session_factory,
)
from dealmail.models import Base

PG_ENV = "DEALMAIL_TEST_DATABASE_URL"
PG_SKIP_REASON = f"PostgreSQL tests need {PG_ENV} (CI sets it)"
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per run; each test gets a copy (migrating costs ~0.5 s)."""
    path = tmp_path_factory.mktemp("template") / "dealmail.db"
    migrate(f"sqlite:///{path}")
    dispose_engines()
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(PG_SKIP_REASON)
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(normalise_url(base))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(normalise_url(base)).update_query_dict({"options": f"-csearch_path={schema}"})
    rendered = url.render_as_string(hide_password=False)
    migrate(rendered)
    try:
        yield rendered
    finally:
        dispose_engines()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _truncate_pg(engine: Engine) -> None:
    names = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A freshly migrated, empty database: SQLite, then PostgreSQL when configured."""
    if request.param == "sqlite":
        target = tmp_path / "data" / "dealmail.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sqlite_template, target)
        url = f"sqlite:///{target}"
        yield url
        dispose_engine(url)
        return
    url = request.getfixturevalue("pg_url")
    yield url
    _truncate_pg(get_engine(Settings(database_url=url)))


@pytest.fixture
def settings(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Process settings pointing at this test's data directory and database."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEALMAIL_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DEALMAIL_DATABASE_URL", db_url)
    monkeypatch.setenv("DEALMAIL_SECRET_KEY", secrets.token_urlsafe(48))
    reset_settings_cache()
    yield Settings()
    reset_settings_cache()


@pytest.fixture
def engine(settings: Settings) -> Engine:
    return get_engine(settings)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    db_session = session_factory(engine)()
    try:
        yield db_session
    finally:
        db_session.rollback()
        db_session.close()


@pytest.fixture(autouse=True, scope="session")
def _dispose_at_end() -> Iterator[None]:
    yield
    dispose_engines()
