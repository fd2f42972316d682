"""analytics: events index covers message_id

Revision ID: 0003_analytics
Revises: 0002_contacts
Create Date: 2026-11-28 09:50:46.256649
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_analytics"
down_revision: str | None = "0002_contacts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_campaign_kind"))
        batch_op.create_index(
            "ix_events_campaign_kind", ["campaign_id", "kind", "message_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_campaign_kind")
        batch_op.create_index(
            batch_op.f("ix_events_campaign_kind"), ["campaign_id", "kind"], unique=False
        )
