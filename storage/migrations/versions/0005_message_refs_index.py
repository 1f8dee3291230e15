"""a message's refs are found by (message, place, side)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message_refs") as batch:
        batch.create_index("ix_message_refs_message", ["message_id", "place", "side"])
        batch.drop_index("ix_message_refs_message_id")


def downgrade() -> None:
    with op.batch_alter_table("message_refs") as batch:
        batch.create_index("ix_message_refs_message_id", ["message_id"])
        batch.drop_index("ix_message_refs_message")
