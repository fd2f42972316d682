"""consent events: index the hash only where no customer holds the event

Revision ID: 0004_consent_hash
Revises: 0003_analytics
Create Date: 2026-12-03 10:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_consent_hash"
down_revision: str | None = "0003_analytics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNOWNED = sa.text("customer_id IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_events_email_hash")
        batch_op.create_index(
            "ix_consent_events_unowned_hash",
            ["email_hash"],
            unique=False,
            sqlite_where=_UNOWNED,
            postgresql_where=_UNOWNED,
        )


def downgrade() -> None:
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_events_unowned_hash")
        batch_op.create_index("ix_consent_events_email_hash", ["email_hash"], unique=False)
