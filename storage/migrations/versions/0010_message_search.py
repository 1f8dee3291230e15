"""full-text search over what customers and operators wrote

SQLite: an FTS5 table of its own (``message_search``), filled after the fact by
``storage.search.catch_up`` so that ingest never pays for it; edits and deletes
follow by trigger. PostgreSQL: a GIN index on the text's ``simple`` tsvector.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE = (
    "CREATE VIRTUAL TABLE message_search USING fts5("
    "text, tokenize = 'unicode61 remove_diacritics 2')",
    # an edit or a delete of a message already indexed is followed at once (rare,
    # and the index must not show words a customer took back)
    "CREATE TRIGGER message_search_edit AFTER UPDATE OF text ON messages "
    "WHEN old.id IN (SELECT rowid FROM message_search WHERE rowid = old.id) BEGIN "
    "DELETE FROM message_search WHERE rowid = old.id; "
    "INSERT INTO message_search(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN "
    "DELETE FROM message_search WHERE rowid = old.id; END",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE:
            op.execute(statement)
    else:
        op.execute(
            "CREATE INDEX ix_messages_search ON messages "
            "USING gin (to_tsvector('simple', text))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS message_search_edit")
        op.execute("DROP TRIGGER IF EXISTS message_search_delete")
        op.execute("DROP TABLE IF EXISTS message_search")
    else:
        op.execute("DROP INDEX IF EXISTS ix_messages_search")
