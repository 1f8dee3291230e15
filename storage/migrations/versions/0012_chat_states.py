"""what a channel keeps about one of its chats (a web visitor's token digest),
and the answers offered with a message (its choices)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_states",
        sa.Column("channel", sa.String(length=32), primary_key=True),
        sa.Column("chat_id", sa.String(length=320), primary_key=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
    )
    # a plain ADD COLUMN (no table rebuild on SQLite: migration 0010's triggers stay)
    op.add_column("messages", sa.Column("choices", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("choices")
    op.drop_table("chat_states")
