"""a conversation's priority (the queue's order) and whom the report credits

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CREDITS = ("first_responder_id", "resolved_by_id", "csat_operator_id")


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        for name in CREDITS:
            batch.add_column(sa.Column(name, sa.String(length=64), nullable=True))
        batch.drop_index("ix_conversations_status_queued")
    op.create_index(
        "ix_conversations_queue",
        "conversations",
        ["status", "priority", "queued_at"],
    )
    # what was known before: the last assignee answered, closed and was rated
    op.execute(
        "UPDATE conversations SET first_responder_id = assignee_id "
        "WHERE first_response_at IS NOT NULL"
    )
    op.execute(
        "UPDATE conversations SET resolved_by_id = assignee_id, csat_operator_id = assignee_id "
        "WHERE resolved_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_queue", table_name="conversations")
    with op.batch_alter_table("conversations") as batch:
        for name in CREDITS:
            batch.drop_column(name)
        batch.drop_column("priority")
        batch.create_index("ix_conversations_status_queued", ["status", "queued_at"])
