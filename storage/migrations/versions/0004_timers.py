"""deadlines for business hours, SLA, auto-close, snooze and CSAT

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMPS = (
    "awaiting_since",
    "last_reply_at",
    "reminded_at",
    "escalated_at",
    "nudged_at",
    "snoozed_until",
    "csat_asked_at",
    "csat_rated_at",
)


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        for name in TIMESTAMPS:
            batch.add_column(
                sa.Column(name, storage.types.UTCDateTime(timezone=True), nullable=True)
            )
        batch.add_column(sa.Column("csat_comment", sa.String(), nullable=True))
    # only pending deadlines are kept now: acting on one deletes it
    op.execute("DELETE FROM deadlines WHERE done_at IS NOT NULL")
    with op.batch_alter_table("deadlines") as batch:
        batch.drop_column("done_at")
    op.create_table(
        "sla_breaches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=8), nullable=False),
        sa.Column("operator_id", sa.String(length=64), nullable=True),
        sa.Column("due_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("breached_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sla_breaches") as batch:
        batch.create_index("ix_sla_breaches_conversation_id", ["conversation_id"])
        batch.create_index("ix_sla_breaches_breached_at", ["breached_at"])


def downgrade() -> None:
    op.drop_table("sla_breaches")
    with op.batch_alter_table("deadlines") as batch:
        batch.add_column(
            sa.Column("done_at", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("csat_comment")
        for name in reversed(TIMESTAMPS):
            batch.drop_column(name)
