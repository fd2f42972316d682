"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 09:36:24.791817
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import dealmail.models.base

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", dealmail.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_users")),
        sa.UniqueConstraint("username", name=op.f("uq_admin_users_username")),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("last_name", sa.String(length=200), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("consent_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("consent_source", sa.String(length=255), nullable=True),
        sa.Column("consent_ip", sa.String(length=64), nullable=True),
        sa.Column("consent_wording", sa.Text(), nullable=True),
        sa.Column("created_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("email_key", name=op.f("uq_customers_email_key")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customers_consent_at"), ["consent_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_customers_status"), ["status"], unique=False)

    op.create_table(
        "deals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("terms", sa.Text(), nullable=True),
        sa.Column("valid_from", dealmail.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_until", dealmail.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.Column("uses_per_coupon", sa.Integer(), nullable=False),
        sa.Column("created_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deals")),
        sa.UniqueConstraint("name", name=op.f("uq_deals_name")),
    )
    op.create_table(
        "locations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
        sa.UniqueConstraint("name", name=op.f("uq_locations_name")),
    )
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "rules",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("name", name=op.f("uq_segments_name")),
    )
    op.create_table(
        "send_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("worker", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_send_log")),
    )
    with op.batch_alter_table("send_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_send_log_at"), ["at"], unique=False)

    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column(
            "value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=True),
        sa.Column("created_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("email_hash", name=op.f("uq_suppressions_email_hash")),
    )
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("name_key", sa.String(length=100), nullable=False),
        sa.Column("created_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("name_key", name=op.f("uq_tags_name_key")),
    )
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker", sa.String(length=100), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seen_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker", name=op.f("pk_worker_heartbeats")),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("preheader", sa.String(length=255), nullable=True),
        sa.Column("from_name", sa.String(length=200), nullable=True),
        sa.Column("from_email", sa.String(length=320), nullable=True),
        sa.Column("reply_to", sa.String(length=320), nullable=True),
        sa.Column(
            "audience",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("deal_id", sa.Integer(), nullable=True),
        sa.Column("theme", sa.String(length=64), nullable=True),
        sa.Column("html_template", sa.Text(), nullable=True),
        sa.Column(
            "content",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("send_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "materialised_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("materialise_cursor", sa.Integer(), nullable=False),
        sa.Column("finished_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("created_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["deals.id"], name=op.f("fk_campaigns_deal_id_deals"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_campaigns_segment_id_segments"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaigns_send_at"), ["send_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_campaigns_status"), ["status"], unique=False)

    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("wording", sa.Text(), nullable=True),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_consent_events_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
    )
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.create_index("ix_consent_events_customer_at", ["customer_id", "at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_consent_events_email_hash"), ["email_hash"], unique=False
        )

    op.create_table(
        "customer_tags",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_tags_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name=op.f("fk_customer_tags_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("customer_id", "tag_id", name=op.f("pk_customer_tags")),
    )
    with op.batch_alter_table("customer_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_tags_tag_id"), ["tag_id"], unique=False)

    op.create_table(
        "deal_locations",
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deals.id"],
            name=op.f("fk_deal_locations_deal_id_deals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_deal_locations_location_id_locations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("deal_id", "location_id", name=op.f("pk_deal_locations")),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_devices_location_id_locations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_devices_key_hash")),
    )
    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column(
            "response",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_idempotency_records_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint("device_id", "key", name=op.f("uq_idempotency_records_device_id_key")),
    )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_records_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "lookup_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_lookup_failures_device_id_devices"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lookup_failures")),
    )
    with op.batch_alter_table("lookup_failures", schema=None) as batch_op:
        batch_op.create_index("ix_lookup_failures_device_at", ["device_id", "at"], unique=False)
        batch_op.create_index("ix_lookup_failures_ip_at", ["ip", "at"], unique=False)

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column(
            "lease_expires_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("provider_message_id", sa.String(length=255), nullable=True),
        sa.Column("message_id_header", sa.String(length=255), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_kind", sa.String(length=32), nullable=True),
        sa.Column("created_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "first_attempt_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("sent_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_messages_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_messages_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint(
            "campaign_id", "customer_id", name=op.f("uq_messages_campaign_id_customer_id")
        ),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messages_campaign_status", ["campaign_id", "status"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_messages_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(
            "ix_messages_due",
            ["next_attempt_at"],
            unique=False,
            postgresql_where=sa.text("status IN ('queued', 'deferred')"),
            sqlite_where=sa.text("status IN ('queued', 'deferred')"),
        )
        batch_op.create_index(
            "ix_messages_leased",
            ["lease_expires_at"],
            unique=False,
            postgresql_where=sa.text("status = 'sending'"),
            sqlite_where=sa.text("status = 'sending'"),
        )
        batch_op.create_index(
            batch_op.f("ix_messages_provider_message_id"), ["provider_message_id"], unique=False
        )

    op.create_table(
        "pairing_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("device_name", sa.String(length=100), nullable=True),
        sa.Column("created_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_pairing_tokens_device_id_devices"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_pairing_tokens_location_id_locations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pairing_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_pairing_tokens_token_hash")),
    )
    op.create_table(
        "coupons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("short_code_hash", sa.String(length=64), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("valid_from", dealmail.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
        sa.Column("is_test", sa.Boolean(), nullable=False),
        sa.Column("short_code_misses", sa.Integer(), nullable=False),
        sa.Column("created_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_coupons_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_coupons_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["deals.id"], name=op.f("fk_coupons_deal_id_deals"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_coupons_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("message_id", name=op.f("uq_coupons_message_id")),
        sa.UniqueConstraint("short_code_hash", name=op.f("uq_coupons_short_code_hash")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_coupons_token_hash")),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coupons_campaign_id"), ["campaign_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_coupons_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_coupons_deal_id"), ["deal_id"], unique=False)

    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_delivery_attempts_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_delivery_attempts_message_id"), ["message_id"], unique=False
        )

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("provider_event_id", sa.String(length=255), nullable=True),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_events_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_events_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_events_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("provider_event_id", name=op.f("uq_events_provider_event_id")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_campaign_kind", ["campaign_id", "kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_message_id"), ["message_id"], unique=False)

    op.create_table(
        "redemptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("coupon_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("location_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("redeemed_at", dealmail.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("discount_value", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("order_reference", sa.String(length=100), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("voids_id", sa.Integer(), nullable=True),
        sa.Column("voided_by_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_redemptions_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["coupons.id"],
            name=op.f("fk_redemptions_coupon_id_coupons"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_redemptions_device_id_devices"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_redemptions_location_id_locations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["voided_by_id"],
            ["redemptions.id"],
            name=op.f("fk_redemptions_voided_by_id_redemptions"),
        ),
        sa.ForeignKeyConstraint(
            ["voids_id"], ["redemptions.id"], name=op.f("fk_redemptions_voids_id_redemptions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemptions")),
        sa.UniqueConstraint("voids_id", name=op.f("uq_redemptions_voids_id")),
    )
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.create_index("ix_redemptions_at", ["redeemed_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_redemptions_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_redemptions_coupon_id"), ["coupon_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_redemptions_device_id"), ["device_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_redemptions_location_id"), ["location_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_redemptions_location_id"))
        batch_op.drop_index(batch_op.f("ix_redemptions_device_id"))
        batch_op.drop_index(batch_op.f("ix_redemptions_coupon_id"))
        batch_op.drop_index(batch_op.f("ix_redemptions_campaign_id"))
        batch_op.drop_index("ix_redemptions_at")

    op.drop_table("redemptions")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_message_id"))
        batch_op.drop_index("ix_events_campaign_kind")

    op.drop_table("events")
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_attempts_message_id"))

    op.drop_table("delivery_attempts")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupons_deal_id"))
        batch_op.drop_index(batch_op.f("ix_coupons_customer_id"))
        batch_op.drop_index(batch_op.f("ix_coupons_campaign_id"))

    op.drop_table("coupons")
    op.drop_table("pairing_tokens")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_provider_message_id"))
        batch_op.drop_index(
            "ix_messages_leased",
            postgresql_where=sa.text("status = 'sending'"),
            sqlite_where=sa.text("status = 'sending'"),
        )
        batch_op.drop_index(
            "ix_messages_due",
            postgresql_where=sa.text("status IN ('queued', 'deferred')"),
            sqlite_where=sa.text("status IN ('queued', 'deferred')"),
        )
        batch_op.drop_index(batch_op.f("ix_messages_customer_id"))
        batch_op.drop_index("ix_messages_campaign_status")

    op.drop_table("messages")
    with op.batch_alter_table("lookup_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_lookup_failures_ip_at")
        batch_op.drop_index("ix_lookup_failures_device_at")

    op.drop_table("lookup_failures")
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_records_created_at"))

    op.drop_table("idempotency_records")
    op.drop_table("devices")
    op.drop_table("deal_locations")
    with op.batch_alter_table("customer_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_tags_tag_id"))

    op.drop_table("customer_tags")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_events_email_hash"))
        batch_op.drop_index("ix_consent_events_customer_at")

    op.drop_table("consent_events")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaigns_status"))
        batch_op.drop_index(batch_op.f("ix_campaigns_send_at"))

    op.drop_table("campaigns")
    op.drop_table("worker_heartbeats")
    op.drop_table("tags")
    op.drop_table("suppressions")
    op.drop_table("settings")
    with op.batch_alter_table("send_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_send_log_at"))

    op.drop_table("send_log")
    op.drop_table("segments")
    op.drop_table("locations")
    op.drop_table("deals")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_status"))
        batch_op.drop_index(batch_op.f("ix_customers_consent_at"))

    op.drop_table("customers")
    op.drop_table("admin_users")
