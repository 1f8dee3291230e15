"""Storage on real databases: migrations, time zones, locks, deadlines."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import bindparam, event, text, update
from sqlalchemy import insert as sa_insert
from sqlmodel import SQLModel, select

from storage import (
    ACTIVE_STATUSES,
    Conversation,
    ConversationStatus,
    Customer,
    CustomerIdentity,
    Database,
    Deadline,
    OutboxRow,
    OutboxStatus,
    Repository,
    SchemaOutdated,
    Transaction,
    WorkspaceThread,
    build,
)
from storage.bulk import Bulk
from storage.history_queries import SEARCH_OBJECTS
from storage.migrate import (
    alembic_current,
    alembic_head,
    current_revision,
    ensure_schema,
    head_revision,
    upgrade,
)
from storage.session import GatewaySession
from tests.clock import ManualClock
from tests.support import SAFETY_SECONDS


@pytest.fixture
async def db(database_url: str):
    database = Database(database_url)
    yield database
    await database.dispose()


async def test_the_migrations_build_exactly_the_models_schema(db: Database) -> None:
    assert await current_revision(db) is None
    before, after = await upgrade(db)
    assert (before, after) == (None, head_revision())

    def diff(conn):
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                # the search's FTS5 table (and its shadow tables) and GIN index
                "include_name": lambda name, kind, parent: (
                    not (name or "").startswith(SEARCH_OBJECTS)
                ),
            },
        )
        return compare_metadata(context, SQLModel.metadata)

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    # running it again is harmless
    assert await upgrade(db) == (head_revision(), head_revision())


async def test_the_schema_check_without_alembic_reads_what_alembic_reads(db: Database) -> None:
    # what `gateway status` and `report` check before reading (storage.schema_version)
    assert head_revision() == alembic_head()
    assert await current_revision(db) is None and await alembic_current(db) is None
    await upgrade(db)
    assert await current_revision(db) == await alembic_current(db) == alembic_head()
    async with db.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    assert await current_revision(db) == await alembic_current(db) == "0001"


async def test_sqlite_migrates_itself_and_postgresql_refuses_an_outdated_schema(
    db: Database,
) -> None:
    if db.is_sqlite:
        await ensure_schema(db, config_path="config.toml")
        assert await current_revision(db) == head_revision()
    else:
        with pytest.raises(SchemaOutdated, match=r"run `gateway migrate --config cfg.toml`"):
            await ensure_schema(db, config_path="cfg.toml")
        await upgrade(db)
        await ensure_schema(db, config_path="cfg.toml")


async def test_times_come_back_aware_and_in_utc(db: Database) -> None:
    await upgrade(db)
    repo = Repository(db)
    moment = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    async with repo.transaction() as tx:
        customer = Customer(display_name="Olga", created_at=moment)
        tx.add(customer)
        await tx.flush()
        tx.add(
            Conversation(
                customer_id=customer.id, channel="telegram", chat_id="1", created_at=moment
            )
        )
    async with repo.transaction() as tx:
        stored = await tx.conversation(1)
    assert stored is not None
    assert stored.created_at == moment
    assert stored.created_at.tzinfo is not None


async def test_a_row_built_fast_is_the_row_the_constructor_makes(db: Database) -> None:
    """``build`` skips SQLModel's per-field hooks; what it makes must be written and
    read back exactly as a constructed row, with fresh defaults of its own."""
    await upgrade(db)
    repo = Repository(db)
    values = {"customer_id": 1, "channel": "telegram", "chat_id": "7", "subject": "Hi"}
    async with repo.transaction() as tx:
        tx.add(Customer(id=1, display_name="Olga"))
        await tx.flush()
        made, built = Conversation(**values), build(Conversation, **values)
        assert made.model_dump(exclude={"created_at", "updated_at"}) == built.model_dump(
            exclude={"created_at", "updated_at"}
        )
        assert built.tags == [] and built.tags is not build(Conversation, **values).tags
        assert built.created_at.tzinfo is not None
        tx.add(made)
        tx.add(built)
        await tx.flush()
        built.status = ConversationStatus.QUEUED  # a change after the insert is an update
    async with repo.transaction() as tx:
        rows = (await tx.session.exec(select(Conversation).order_by(Conversation.id))).all()
    assert [(r.chat_id, r.subject, r.status, r.tags) for r in rows] == [
        ("7", "Hi", ConversationStatus.NEW, []),
        ("7", "Hi", ConversationStatus.QUEUED, []),
    ]
    assert build(Conversation).customer_id is None  # no default: unset, as constructed
    with pytest.raises(TypeError, match="no field colour"):
        build(Conversation, colour="red")


async def test_rows_written_in_bulk_are_stored_as_sqlalchemy_stores_them(db: Database) -> None:
    """``Bulk`` converts parameters itself (timestamps on SQLite by its own hand): the
    stored values must be exactly what SQLAlchemy's own executemany stores, as raw
    column values too, since SQLite compares stored timestamps as text."""
    await upgrade(db)
    moment = datetime(2026, 3, 29, 1, 30, 5, 120, tzinfo=UTC)
    elsewhere = moment.astimezone(timezone(timedelta(hours=-5)))  # the same instant
    whole = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # no microseconds to print

    def row(n: int, when: datetime) -> dict[str, Any]:
        return {
            "destination": "telegram",
            "chat_key": f"chat-{n}",
            "conversation_id": None,
            "message_id": None,
            "kind": "message",
            "payload": {"text": "Привет", "n": n, "files": []},
            "dedupe_key": f"key-{n}",
            "status": OutboxStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": when,
            "lease_until": None,
            "last_error": None,
            "receipt": None,
            "created_at": when,
            "sent_at": None,
        }

    table = OutboxRow.__table__  # type: ignore[attr-defined]
    insert = sa_insert(table)
    sent = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(status=OutboxStatus.SENT, lease_until=None, sent_at=bindparam("at"))
        .values(receipt=bindparam("receipt"))
    )
    marks = [
        {"row_id": 1, "at": whole, "receipt": {"ids": ["5"]}},
        {"row_id": 2, "at": elsewhere, "receipt": None},
    ]
    async with Repository(db).transaction() as tx:
        await tx.session.exec(insert, params=[row(1, moment), row(2, elsewhere)])  # type: ignore[call-overload]
        await tx.session.exec(sent, params=marks)  # type: ignore[call-overload]
        connection = await tx.session.connection()
        await Bulk(insert).run(connection, [row(3, moment), row(4, elsewhere)])
        await Bulk(sent).run(connection, [{**m, "row_id": m["row_id"] + 2} for m in marks])
        await Bulk(insert).run(connection, [])  # nothing to write: no statement
    async with db.engine.connect() as conn:
        raw = (await conn.exec_driver_sql("SELECT * FROM outbox ORDER BY id")).all()
    async with Repository(db).transaction() as tx:
        read = (await tx.session.exec(select(OutboxRow).order_by(OutboxRow.id))).all()
    assert len(raw) == 4

    def same(row: Any) -> tuple[Any, ...]:
        names = ("status", "attempts", "next_attempt_at", "lease_until", "receipt", "created_at")
        return tuple(getattr(row, name) for name in (*names, "sent_at", "last_error"))

    assert [same(r) for r in raw[2:]] == [same(r) for r in raw[:2]]
    assert [same(r) for r in read[2:]] == [same(r) for r in read[:2]]
    assert [r.payload["n"] for r in read] == [1, 2, 3, 4]
    assert read[3].payload == {"text": "Привет", "n": 4, "files": []}
    assert read[3].sent_at == moment and read[2].sent_at == whole
    assert read[2].status == OutboxStatus.SENT and read[2].lease_until is None
    with pytest.raises(KeyError, match="colour"):
        await Bulk(insert).run(connection, [{**row(5, moment), "colour": "red"}])


async def test_rows_of_different_columns_in_one_bulk_run_are_each_written_whole(
    db: Database,
) -> None:
    """An UPDATE's rows may set different columns (a touch sets one more when the
    customer wrote): each row's own columns are written, none dropped or asked of a
    row that lacks them."""
    await upgrade(db)
    table = Customer.__table__  # type: ignore[attr-defined]
    rename = Bulk(update(table).where(table.c.id == bindparam("row_id")))
    async with Repository(db).transaction() as tx:
        customers = [Customer(display_name=f"C{n}") for n in range(3)]
        for customer in customers:
            tx.session.add(customer)
        await tx.session.flush()
        ids = [c.id for c in customers]
        connection = await tx.session.connection()
        await rename.run(
            connection,
            [
                {"row_id": ids[0], "display_name": "Ann"},
                {"row_id": ids[1], "display_name": "Bo", "language": "uk"},
                {"row_id": ids[2], "display_name": "Cy"},
            ],
        )
    async with db.engine.connect() as conn:
        stored = (
            await conn.exec_driver_sql("SELECT display_name, language FROM customers ORDER BY id")
        ).all()
    assert [tuple(r) for r in stored] == [("Ann", None), ("Bo", "uk"), ("Cy", None)]


async def test_a_touched_conversation_is_stored_with_its_time_of_change(
    db: Database, clock: ManualClock
) -> None:
    """``touch`` writes ``updated_at`` with the pending rows, not as an ORM change: a
    new conversation and one read from the database both get it, along with any
    other change made to them in the same transaction."""
    await upgrade(db)
    repo = Repository(db)
    async with repo.transaction() as tx:
        tx.add(Customer(id=1, display_name="Olga"))
        old = Conversation(id=1, customer_id=1, channel="telegram", chat_id="1")
        tx.add(old)
    later = clock.advance(hours=2)
    async with repo.transaction() as tx:
        old = await tx.conversation(1)
        assert old is not None
        tx.touch(old)
        assert old.updated_at >= later
        old.subject = "Parcel"  # an ORM change beside it
        new = build(Conversation, id=2, customer_id=1, channel="telegram", chat_id="2")
        tx.add(new)
        tx.touch(new)
        touched = {1: old.updated_at, 2: new.updated_at}
    async with repo.transaction() as tx:
        rows = (await tx.session.exec(select(Conversation).order_by(Conversation.id))).all()
    assert [(r.id, r.updated_at, r.subject) for r in rows] == [
        (1, touched[1], "Parcel"),
        (2, touched[2], None),
    ]
    assert rows[0].created_at < later <= rows[0].updated_at


async def test_the_time_a_customer_wrote_is_stored_with_the_touch(
    db: Database, clock: ManualClock
) -> None:
    """``touch(customer_wrote=...)`` writes ``last_customer_message_at`` in the same
    UPDATE as ``updated_at``: a conversation read from the database and a new one
    both get it, one touched again later keeps it, and one touched without it keeps
    what it had."""
    await upgrade(db)
    repo = Repository(db)
    first = clock.now()
    async with repo.transaction() as tx:
        tx.add(Customer(id=1, display_name="Olga"))
        for n in (1, 2):
            tx.add(
                Conversation(
                    id=n,
                    customer_id=1,
                    channel="telegram",
                    chat_id=str(n),
                    last_customer_message_at=first,
                )
            )
    wrote = clock.advance(hours=2)
    async with repo.transaction() as tx:
        old = await tx.conversation(1)
        other = await tx.conversation(2)
        assert old is not None and other is not None
        tx.touch(old, customer_wrote=wrote)
        assert old.last_customer_message_at == wrote
        tx.touch(other)
        new = build(Conversation, id=3, customer_id=1, channel="telegram", chat_id="3")
        tx.add(new)
        tx.touch(new, customer_wrote=wrote)
        clock.advance(minutes=1)
        tx.touch(old)  # an operator's change after the customer's message
        touched = {1: old.updated_at, 2: other.updated_at, 3: new.updated_at}
    async with repo.transaction() as tx:
        rows = (await tx.session.exec(select(Conversation).order_by(Conversation.id))).all()
    assert [(r.id, r.updated_at, r.last_customer_message_at) for r in rows] == [
        (1, touched[1], wrote),
        (2, touched[2], first),
        (3, touched[3], wrote),
    ]


async def test_new_customers_written_before_the_flush_stay_the_sessions_rows(
    db: Database,
) -> None:
    """New customers, identities and conversations that have their ids are inserted
    by the session's flush hook, not the unit of work: the same objects stay in the
    session (found without a query), a later change to one is an UPDATE, and rows
    without an id still go through the unit of work."""
    await upgrade(db)
    repo = Repository(db)
    async with repo.transaction() as tx:
        assert isinstance(tx.session.sync_session, GatewaySession)
        customer = build(Customer, id=5, display_name="Olga")
        identity = CustomerIdentity(id=7, customer_id=5, channel="telegram", external_id="42")
        first = build(Conversation, id=9, customer_id=5, channel="telegram", chat_id="42")
        second = build(Conversation, id=10, customer_id=5, channel="telegram", chat_id="43")
        # children first: the hook writes the parents before them all the same
        tx.add(second, first, identity, customer)
        await tx.flush()
        assert await tx.session.get(Conversation, 9) is first
        first.status = ConversationStatus.QUEUED
        customer.display_name = "Olga P."
        tx.add(Customer(display_name="Pat"))  # no id yet: the unit of work's
    async with repo.transaction() as tx:
        conversations = (await tx.session.exec(select(Conversation))).all()
        customers = (await tx.session.exec(select(Customer).order_by(Customer.id))).all()
        identities = (await tx.session.exec(select(CustomerIdentity))).all()
    assert sorted((c.id, c.status, c.chat_id) for c in conversations) == [
        (9, ConversationStatus.QUEUED, "42"),
        (10, ConversationStatus.NEW, "43"),
    ]
    # (PostgreSQL's sequence gives Pat its first id: explicit ids do not move it)
    assert sorted((c.display_name, c.id == 5) for c in customers) == [
        ("Olga P.", True),
        ("Pat", False),
    ]
    assert [(i.id, i.customer_id, i.external_id) for i in identities] == [(7, 5, "42")]
    assert conversations[0].created_at.tzinfo is not None


async def test_a_new_thread_is_written_with_the_pending_rows_and_reads_back_as_saved(
    db: Database,
) -> None:
    """A thread recorded in a transaction is written with its other pending rows (no
    statement for its id, no flush of its own); read or changed before or after
    that write, within the transaction or after it, it is one row, as last saved."""
    await upgrade(db)
    repo = Repository(db)
    statements: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    async with repo.transaction() as tx:
        tx.add(Customer(id=1, display_name="Olga"))
        tx.add(Conversation(id=1, customer_id=1, channel="telegram", chat_id="7"))
        tx.add(Conversation(id=2, customer_id=1, channel="telegram", chat_id="8"))
        await tx.flush()
        event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
        try:
            await tx.save_thread(1, "telegram", "T1", "H1", {"v": 1})
            await tx.save_thread(1, "telegram", None, None, {"v": 2})  # before the write
            await tx.save_thread(2, "telegram", None, None, None)  # no thread: nothing
            assert (await tx.thread(1, "telegram")).header_card == {"v": 2}
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
        # the existence checks read, nothing was written or numbered yet
        assert not [s for s in statements if "INSERT" in s or "max(id)" in s], statements
        found = await tx.threads_of([(1, "telegram"), (2, "telegram")])  # writes it first
        assert list(found) == [(1, "telegram")]
        assert (found[(1, "telegram")].thread_ref, found[(1, "telegram")].header_card) == (
            "T1",
            {"v": 2},
        )
        await tx.save_thread(1, "telegram", None, "H9", {"v": 3})  # after the write
        assert (await tx.conversation_by_thread("telegram", "T1")).id == 1
    async with repo.transaction() as tx:
        rows = (await tx.session.exec(select(WorkspaceThread))).all()
        assert [(r.conversation_id, r.thread_ref, r.header_ref, r.header_card) for r in rows] == [
            (1, "T1", "H9", {"v": 3})
        ]
        await tx.save_thread(2, "telegram", "T2", "H2", None)  # written at commit
    async with repo.transaction() as tx:
        assert (await tx.thread(2, "telegram")).thread_ref == "T2"


async def test_two_workers_never_claim_the_same_delivery(db: Database) -> None:
    await upgrade(db)
    repo = Repository(db)
    async with repo.transaction() as tx:
        for chat in range(10):
            for n in range(3):
                tx.add(
                    OutboxRow(
                        destination="telegram",
                        chat_key=f"chat:{chat}",
                        kind="message",
                        payload={},
                        dedupe_key=f"{chat}:{n}",
                    )
                )
    lease = timedelta(seconds=60)
    async with repo.transaction() as tx:
        first = await tx.claim_outbox("telegram", limit=6, lease=lease)
    async with repo.transaction() as tx:
        second = await tx.claim_outbox("telegram", limit=100, lease=lease)
    claimed = [r.chat_key for r in first + second]
    # one row per chat at a time (order per chat), and no row twice
    assert sorted(claimed) == sorted(f"chat:{c}" for c in range(10))
    assert len({r.id for r in first + second}) == 10
    # a lease that ran out (a process died mid-send) makes the row claimable again
    later = datetime.now(UTC) + timedelta(seconds=61)
    async with repo.transaction() as tx:
        again = await tx.claim_outbox("telegram", limit=100, lease=lease, now=later)
    assert {r.id for r in again} == {r.id for r in first + second}
    assert all(r.attempts == 2 for r in again)


async def test_followers_of_many_heads_come_in_one_run_each_and_stop_at_a_row_held_back(
    db: Database,
) -> None:
    """Rows behind a claimed head go out with it; one statement takes them for every
    head of the claim. A chat's run stops at its first row that may not go yet (an
    album part held back a moment): the row behind it never overtakes it."""
    await upgrade(db)
    repo = Repository(db)
    now = datetime.now(UTC)
    plan = {"a": [0, 0, 0, 0, 0], "b": [0, 60, 0], "c": [0, 0]}  # seconds until due
    async with repo.transaction() as tx:
        for chat, delays in plan.items():
            for n, delay in enumerate(delays):
                tx.add(
                    OutboxRow(
                        destination="telegram",
                        chat_key=chat,
                        kind="message",
                        payload={"n": n},
                        dedupe_key=f"{chat}:{n}",
                        next_attempt_at=now + timedelta(seconds=delay),
                    )
                )
    lease = timedelta(seconds=60)
    updates: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            updates.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    async with repo.transaction() as tx:
        heads = await tx.claim_outbox("telegram", limit=10, lease=lease, now=now)
        assert [h.chat_key for h in heads] == ["a", "b", "c"]
        runs = await tx.claim_followers(
            heads[:2],  # c's head is not coalescible, say
            limit=3,
            lease=lease,
            accept=lambda row: row.payload["n"] != 3,
            now=now,
        )
    event.remove(db.engine.sync_engine, "before_cursor_execute", note)
    assert len(updates) == 1, updates  # heads and followers marked together
    by_chat = {h.chat_key: [r.payload["n"] for r in runs[h.id]] for h in heads[:2]}
    assert by_chat == {"a": [1, 2], "b": []}
    taken = {r.id for r in heads} | {r.id for rows in runs.values() for r in rows}
    async with repo.transaction() as tx:
        rows = {r.id: r for r in await tx.session.exec(select(OutboxRow))}
    # marked in the database with the one statement: sending, leased, one attempt
    for row_id, row in rows.items():
        if row_id in taken:
            assert (row.status, row.attempts) == ("sending", 1)
            assert row.lease_until is not None and row.lease_until > now
        else:
            assert (row.status, row.attempts, row.lease_until) == ("pending", 0, None)


async def test_deadlines_are_pending_rows_taken_oldest_first(db: Database) -> None:
    await upgrade(db)
    repo = Repository(db)
    now = datetime.now(UTC)
    async with repo.transaction() as tx:
        customer = Customer(display_name="Olga")
        tx.add(customer)
        await tx.flush()
        conv = Conversation(customer_id=customer.id, channel="telegram", chat_id="1")
        tx.add(conv)
        await tx.flush()
        tx.add(
            Deadline(
                conversation_id=conv.id, kind="sla_breach", due_at=now + timedelta(minutes=10)
            ),
            Deadline(conversation_id=conv.id, kind="nudge", due_at=now + timedelta(minutes=5)),
        )
    async with repo.transaction() as tx:
        assert await tx.next_due_deadline(now + timedelta(minutes=4)) is None
        first = await tx.next_due_deadline(now + timedelta(minutes=11))
        assert first is not None and first.kind == "nudge"
        await tx.delete(first)
    async with repo.transaction() as tx:
        assert set(await tx.deadlines(conv.id)) == {"sla_breach"}


async def test_sqlite_waits_for_another_processs_lock_without_stopping_the_loop(
    sqlite_url: str,
) -> None:
    """SQLite runs on the loop's thread; a lock held elsewhere must be waited for on
    the loop (other work goes on), and the transaction must then go through."""
    import asyncio
    import sqlite3

    db = Database(sqlite_url)
    try:
        await upgrade(db)
        repository = Repository(db)
        other = sqlite3.connect(db.url.database, isolation_level=None)  # "another process"
        other.execute("BEGIN IMMEDIATE")
        other.execute(
            "INSERT INTO customers (display_name, blocked, created_at) "
            "VALUES ('Held', 0, '2026-01-01 00:00:00')"
        )

        async def write() -> int:
            async with repository.transaction() as tx:
                customer = Customer(display_name="Waited")
                tx.add(customer)
                await tx.flush()
                assert customer.id is not None
                return customer.id

        writing = asyncio.create_task(write())
        ticks = 0
        for _ in range(20):  # 0.2 s in which the loop must keep running
            await asyncio.sleep(0.01)
            ticks += 1
        assert not writing.done()
        assert ticks == 20
        other.execute("COMMIT")
        other.close()
        written = await asyncio.wait_for(writing, SAFETY_SECONDS)
        async with repository.transaction() as tx:
            names = {(await tx.customer(i)).display_name for i in (written - 1, written)}
        assert names == {"Held", "Waited"}
    finally:
        await db.dispose()


async def _plan_of(
    db: Database, prefix: str, act: Callable[[Transaction], Awaitable[Any]]
) -> list[str]:
    """SQLite's plan for the first statement starting with ``prefix`` that ``act`` runs."""
    import sqlite3

    from sqlalchemy import event

    seen: list[tuple[str, tuple]] = []

    def note(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().startswith(prefix):
            seen.append((statement, tuple(parameters)))

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    try:
        async with Repository(db).transaction() as tx:
            await act(tx)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)
    assert seen
    statement, parameters = seen[0]
    raw = sqlite3.connect(db.url.database)
    plan = [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters)]
    raw.close()
    return plan


async def test_claiming_reads_the_index_past_the_sent_history(sqlite_url: str) -> None:
    """The outbox keeps every sent row; a claim must find the chats' first undelivered
    rows in the partial index of the rows still to deliver, not by reading the
    history it never needs, nor every row behind a head."""
    db = Database(sqlite_url)
    try:
        await upgrade(db)
        plan = await _plan_of(
            db,
            "SELECT outbox.id",
            lambda tx: tx.claim_outbox("telegram", limit=16, lease=timedelta(seconds=60)),
        )
        heads = next(line for line in plan if line.startswith("SEARCH live"))
        assert "ix_outbox_live (destination=?)" in heads, plan
        assert not any(line.startswith("SCAN") for line in plan), plan
        head = OutboxRow(id=1, destination="telegram", chat_key="c", kind="message", dedupe_key="k")
        plan = await _plan_of(
            db,
            "SELECT outbox.id",
            lambda tx: tx.claim_followers(
                [head], limit=8, lease=timedelta(seconds=60), accept=lambda row: True
            ),
        )
        run = next(line for line in plan if line.startswith("SEARCH chat_run"))
        assert "ix_outbox_live (destination=? AND chat_key=?)" in run, plan
        assert not any(line.startswith(("SCAN outbox", "SCAN chat_run")) for line in plan), plan
    finally:
        await db.dispose()


async def test_a_messages_copies_are_found_by_the_message_not_by_their_place(
    sqlite_url: str,
) -> None:
    """Every delivery looks up where its message's copies are; read by place, that was
    every ref of the place (all of them, in a one-platform team), on every claim."""
    db = Database(sqlite_url)
    try:
        await upgrade(db)
        plan = await _plan_of(
            db,
            "SELECT message_refs.message_id",
            lambda tx: tx.refs_of([1, 2, 3], "telegram", "workspace"),
        )
        search = next(line for line in plan if line.startswith("SEARCH message_refs"))
        assert "ix_message_refs_message (message_id=? AND place=? AND side=?)" in search, plan
    finally:
        await db.dispose()


@pytest.mark.parametrize("seed", range(4))
async def test_loads_and_queue_places_kept_in_memory_match_the_rows(
    db: Database, seed: int
) -> None:
    """Routing reads the loads and the queue once per transaction and then corrects
    them by what the transaction changed (storage/tally.py). Random changes to
    conversations, new, loaded, flushed or not, in three transactions: after each,
    both answers equal what the rows say."""
    rng = random.Random(seed)
    await upgrade(db)
    repo = Repository(db)
    start = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    statuses = list(ConversationStatus)
    #: the truth: id -> (status, assignee, queued_at), as this test set them
    rows: dict[int, tuple[ConversationStatus, str | None, datetime | None]] = {}
    async with repo.transaction() as tx:
        customer = Customer(id=await tx.new_id(Customer), display_name="Olga")
        tx.add(customer)

    def expected_loads() -> dict[str, int]:
        counted = Counter(a for s, a, _ in rows.values() if s in ACTIVE_STATUSES and a)
        return dict(counted)

    def expected_place(conversation_id: int) -> int:
        _, _, at = rows[conversation_id]
        mine = (at, conversation_id)
        return 1 + sum(
            1
            for other, (s, _, q) in rows.items()
            if s == ConversationStatus.QUEUED and (q, other) < mine  # type: ignore[operator]
        )

    for _ in range(3):
        async with repo.transaction() as tx:
            held: dict[int, Conversation] = {}
            for _step in range(40):
                move = rng.random()
                status = rng.choice(statuses)
                assignee = rng.choice([None, "anna", "boris", "vera"])
                # mostly later than any before (a conversation queued now), some
                # earlier, some equal (the queue's order then goes by id)
                minute = rng.choice([rng.randrange(30), 30 + _step, 30 + _step])
                queued_at = start + timedelta(minutes=minute) if status == "queued" else None
                if move < 0.3 or not rows:
                    conversation = Conversation(
                        id=await tx.new_id(Conversation),
                        customer_id=customer.id,
                        channel="telegram",
                        chat_id="1",
                    )
                    tx.add(conversation)
                else:
                    conversation_id = rng.choice(list(rows))
                    found = held.get(conversation_id) or await tx.conversation(conversation_id)
                    assert found is not None
                    conversation = found
                assert conversation.id is not None
                held[conversation.id] = conversation
                conversation.status, conversation.assignee_id = status, assignee
                conversation.queued_at = queued_at
                tx.add(conversation)
                rows[conversation.id] = (status, assignee, queued_at)
                if rng.random() < 0.2:
                    await tx.flush()
                if rng.random() < 0.5:
                    assert await tx.loads() == expected_loads()
                if status == ConversationStatus.QUEUED:
                    assert await tx.queue_position(conversation) == expected_place(conversation.id)
        start += timedelta(hours=1)
