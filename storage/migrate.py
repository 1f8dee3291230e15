"""Alembic, driven from code: the migrations ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.database import Database, SchemaOutdated
from storage.leadership import lock_key
from storage.schema_version import current_revision, head_revision

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _alembic_config(connection: Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def alembic_head() -> str:
    """The newest revision, as Alembic reads the migration scripts."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "the package ships no migrations"
    return head


async def alembic_current(db: Database) -> str | None:
    """The database's revision, as Alembic reads it."""

    def _read(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(_read)


async def upgrade(db: Database) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (before, after)."""
    before = await current_revision(db)

    def _upgrade(conn: Connection) -> None:
        command.upgrade(_alembic_config(conn), "head")

    async with db.engine.begin() as conn:
        if not db.is_sqlite:
            # several processes (or VMs, each with ExecStartPre) may migrate at once:
            # one at a time, the others then find nothing left to do
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key("migrate")}
            )
        await conn.run_sync(_upgrade)
    return before, head_revision()


async def ensure_schema(db: Database, *, config_path: str) -> None:
    """Make the schema usable for ``gateway run``.

    On SQLite the gateway is the database's only user, so it migrates by itself. On
    PostgreSQL several gateway processes may share the database and a migration is
    an operator's decision: we refuse to run on an outdated schema instead.
    """
    if db.is_sqlite:
        await upgrade(db)
        return
    current, head = await current_revision(db), head_revision()
    if current != head:
        raise SchemaOutdated(
            f"the database schema is at revision {current or 'none (empty database)'}, "
            f"this gateway needs {head}: run `gateway migrate --config {config_path}` first"
        )
