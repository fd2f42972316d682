"""admin users: a remembered dashboard login issued before this moment no longer counts

Revision ID: 0005_admin_sessions
Revises: 0004_consent_hash
Create Date: 2026-12-03 12:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dealmail.models.base

revision: str = "0005_admin_sessions"
down_revision: str | None = "0004_consent_hash"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("admin_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "sessions_valid_after",
                dealmail.models.base.UTCDateTime(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("admin_users", schema=None) as batch_op:
        batch_op.drop_column("sessions_valid_after")
