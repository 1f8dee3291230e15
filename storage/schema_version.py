"""Whether a database's schema is the one this code needs, without loading Alembic.

`gateway status` and `gateway report` only need that answer (to refuse a database
that is not migrated, with the command that fixes it), and Alembic with what it
imports (Mako, Pygments) is ~90 ms of a command meant to answer within a second.
This reads the same two facts directly: the revision in the database's
``alembic_version`` table, and the newest revision among the migration files the
package ships. ``storage.migrate`` (Alembic) still does every migration.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from storage.database import Database

VERSIONS = Path(__file__).with_name("migrations") / "versions"

_REVISION = re.compile(r"""^revision\b[^=\n]*=\s*["']([^"']+)["']""", re.M)
_DOWN = re.compile(r"""^down_revision\b[^=\n]*=\s*(?:["']([^"']+)["']|None)\s*$""", re.M)


def head_revision() -> str:
    """The newest revision of the migrations shipped with this code."""
    revisions: set[str] = set()
    replaced: set[str] = set()
    for script in VERSIONS.glob("*.py"):
        source = script.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN.search(source)
        if revision is None or down is None:  # a merge or a form this reader does not know
            return _alembic_head()
        revisions.add(revision.group(1))
        if down.group(1):
            replaced.add(down.group(1))
    heads = revisions - replaced
    return heads.pop() if len(heads) == 1 else _alembic_head()


def _alembic_head() -> str:
    from storage.migrate import alembic_head

    return alembic_head()


async def current_revision(db: Database) -> str | None:
    """The revision the database's schema is at; None for an empty database."""

    def read(connection: Connection) -> str | None:
        if not inspect(connection).has_table("alembic_version"):
            return None
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        found = list(versions)
        return found[0] if len(found) == 1 else None

    async with db.engine.connect() as connection:
        return await connection.run_sync(read)
