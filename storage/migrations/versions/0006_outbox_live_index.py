"""the undelivered rows of each chat, in order: a claim finds the chats' heads here

It replaces ix_outbox_chat_order, which held every row ever sent as well: a claim
that grouped by chat read all of them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("status IN ('pending', 'sending')")


def upgrade() -> None:
    op.create_index(
        "ix_outbox_live",
        "outbox",
        ["destination", "chat_key", "id"],
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )
    op.drop_index("ix_outbox_chat_order", table_name="outbox")


def downgrade() -> None:
    op.create_index(
        "ix_outbox_chat_order", "outbox", ["destination", "chat_key", "status", "id"]
    )
    op.drop_index("ix_outbox_live", table_name="outbox")
