"""The Alembic migrations produce exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from dealmail.db import alembic_config, current_revision, make_engine, migrate
from dealmail.models import Base


def test_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}"


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == [], f"models differ from migrations: {differences}"


def test_database_is_at_head(engine: Engine) -> None:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert current_revision(engine) == head


def test_consent_hash_index_migration_keeps_the_trail(tmp_path: Path) -> None:
    """0004 swaps the full hash index for one on events no customer holds, on a database with
    events in it, and back."""
    url = f"sqlite:///{tmp_path / 'trail.db'}"
    migrate(url, "0003_analytics")
    engine = make_engine(url)
    event = (
        "INSERT INTO consent_events (customer_id, email_hash, kind, at, detail)"
        " VALUES (NULL, 'abc', 'unsubscribe', '2024-01-01 00:00:00.000000', '{}')"
    )
    with engine.begin() as connection:
        connection.execute(text(event))
    migrate(url, "head")
    with engine.connect() as connection:
        assert _consent_indexes(connection) == {
            "ix_consent_events_customer_at",
            "ix_consent_events_unowned_hash",
        }
        plan = connection.execute(
            text(
                "EXPLAIN QUERY PLAN SELECT id FROM consent_events"
                " WHERE customer_id IS NULL AND email_hash = 'abc'"
            )
        ).all()
        assert "ix_consent_events_unowned_hash" in " ".join(str(row) for row in plan)
        assert connection.scalar(text("SELECT count(*) FROM consent_events")) == 1
    command.downgrade(alembic_config(url), "0003_analytics")
    with engine.connect() as connection:
        assert _consent_indexes(connection) == {
            "ix_consent_events_customer_at",
            "ix_consent_events_email_hash",
        }
        assert connection.scalar(text("SELECT count(*) FROM consent_events")) == 1
    engine.dispose()


def _consent_indexes(connection: Connection) -> set[str]:
    return {str(i["name"]) for i in inspect(connection).get_indexes("consent_events")}
