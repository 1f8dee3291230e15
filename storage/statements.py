"""The repository's hot statements, built once at import.

Building a SQLAlchemy statement and its cache key costs more than SQLite takes to
answer it, so the queries a message or a claim runs are built here once and their
values bound at execution (``bindparam``). ``storage.repository`` uses them as
``sql.NAME``; nothing else should.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, case, func, or_, text, tuple_, update
from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select

from storage.bulk import Bulk
from storage.models import (
    ACTIVE_STATUSES,
    CUSTOMER_CHAT_KEY,
    LIVE_OUTBOX,
    QUEUED_COLUMNS,
    Conversation,
    ConversationStatus,
    Customer,
    CustomerIdentity,
    Deadline,
    InboundEvent,
    Message,
    MessageRef,
    OutboxRow,
    OutboxStatus,
    WorkspaceThread,
    table,
)

FIND_EVENT = select(InboundEvent).where(
    InboundEvent.channel == bindparam("channel"), InboundEvent.event_id == bindparam("event_id")
)
IDENTITY = (
    select(CustomerIdentity, Customer)
    .join(Customer, col(Customer.id) == CustomerIdentity.customer_id)
    .where(
        CustomerIdentity.channel == bindparam("channel"),
        CustomerIdentity.external_id == bindparam("external_id"),
    )
    .with_for_update()
)
CONVERSATION_LOCKED = (
    select(Conversation).where(Conversation.id == bindparam("id")).with_for_update()
)
LATEST_CONVERSATION = (
    select(Conversation)
    .where(
        Conversation.customer_id == bindparam("customer_id"),
        Conversation.channel == bindparam("channel"),
        Conversation.chat_id == bindparam("chat_id"),
    )
    .order_by(col(Conversation.id).desc())
    .limit(1)
)
# The same three, for a batch (``Transaction.preload``)
EVENTS_IN = select(InboundEvent).where(
    InboundEvent.channel == bindparam("channel"),
    col(InboundEvent.event_id).in_(bindparam("event_ids", expanding=True)),
)
IDENTITIES_IN = (
    select(CustomerIdentity, Customer)
    .join(Customer, col(Customer.id) == CustomerIdentity.customer_id)
    .where(
        CustomerIdentity.channel == bindparam("channel"),
        col(CustomerIdentity.external_id).in_(bindparam("external_ids", expanding=True)),
    )
    # one order for every locker: two batches never wait for each other in a ring
    .order_by(col(CustomerIdentity.id))
    .with_for_update()
)
LATEST_CONVERSATIONS_OF = select(Conversation).where(
    col(Conversation.id).in_(
        select(func.max(Conversation.id))
        .where(col(Conversation.customer_id).in_(bindparam("customer_ids", expanding=True)))
        .group_by(
            col(Conversation.customer_id), col(Conversation.channel), col(Conversation.chat_id)
        )
    )
)
MESSAGE_COLUMNS = tuple(column.name for column in table(Message).columns)
INSERT_MESSAGES = Bulk(sa_insert(table(Message)))
#: message ids: SQLite's next under the write lock every transaction takes first
#: (BEGIN IMMEDIATE); PostgreSQL's from the column's sequence, a block at a time
LOADS = (
    select(Conversation.assignee_id, func.count())
    .where(
        col(Conversation.status).in_(ACTIVE_STATUSES),
        col(Conversation.assignee_id).is_not(None),
    )
    .group_by(Conversation.assignee_id)
)
#: how many are queued, and the latest time one was
QUEUE_SUMMARY = select(func.count(), func.max(Conversation.queued_at)).where(
    Conversation.status == ConversationStatus.QUEUED
)
#: the tables whose rows get their ids before they are written (``Transaction.new_id``)
ID_TABLES: dict[type, str] = {
    Message: "messages",
    Conversation: "conversations",
    Customer: "customers",
    CustomerIdentity: "customer_identities",
}
LAST_IDS = {
    model: text(f"SELECT coalesce(max(id), 0) FROM {table}") for model, table in ID_TABLES.items()
}
NEXT_IDS = {
    model: text(
        f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, :count)"
    )
    for model, table in ID_TABLES.items()
}
#: how many ids a transaction takes from PostgreSQL's sequence each time it runs
#: out (unused ones are skipped, as a rolled-back insert's are); conversations take
#: theirs one by one, for operators see their numbers (a gap reads as one missing)
ID_BLOCKS: dict[type, tuple[int, ...]] = {
    Message: (4, 16, 64),
    Customer: (4, 16, 64),
    CustomerIdentity: (4, 16, 64),
    Conversation: (1,),
}
# Claiming deliveries (``Transaction.claim_outbox``, ``claim_followers``): built
# anew on every claim, these statements cost more than the rest of it
OUTBOX = table(OutboxRow)
LIVE = OUTBOX.alias("live")
#: the first undelivered row of each of a destination's chats: only these may go
#: (a row waits for the older undelivered rows of its chat, so order per chat is
#: kept even while a delivery is retried). Read from the partial index of the rows
#: still to deliver, a claim costs what the backlog's chats are, not what the history
#: or the rows behind each head are
HEADS = (
    select(func.min(LIVE.c.id))
    .where(LIVE.c.destination == bindparam("destination"), text(f"live.{LIVE_OUTBOX}"))
    .group_by(LIVE.c.chat_key)
)
#: what a claim reads: columns (``QueuedRow``), not entities, from Core statements
QUEUED: list[Any] = [OUTBOX.c[name] for name in QUEUED_COLUMNS]
#: customers' chats before the workspace's threads: a claim takes what can go in this
#: order, so a throttled workspace group never keeps a customer's reply waiting
LANE = case((OUTBOX.c.chat_key.like(f"{CUSTOMER_CHAT_KEY}%"), 0), else_=1)
DUE = or_(
    and_(
        OUTBOX.c.status == OutboxStatus.PENDING,
        OUTBOX.c.next_attempt_at <= bindparam("now"),
    ),
    and_(
        OUTBOX.c.status == OutboxStatus.SENDING,
        OUTBOX.c.lease_until < bindparam("now"),
    ),
)
CLAIM = (
    select(*QUEUED)
    .add_columns(LANE)
    .where(OUTBOX.c.id.in_(HEADS.scalar_subquery()), DUE)
    .order_by(LANE, OUTBOX.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
#: the next page of a claim's heads, past those it looked at already
CLAIM_AFTER = CLAIM.where(
    tuple_(LANE, OUTBOX.c.id) > tuple_(bindparam("after_lane"), bindparam("after_id"))
)
CHAT_RUN = OUTBOX.alias("chat_run")
NUMBERED = (
    select(
        CHAT_RUN.c.id,
        func.row_number()
        .over(partition_by=CHAT_RUN.c.chat_key, order_by=CHAT_RUN.c.id)
        .label("place"),
    )
    .where(
        CHAT_RUN.c.destination == bindparam("destination"),
        CHAT_RUN.c.chat_key.in_(bindparam("chat_keys", expanding=True)),
        text(f"chat_run.{LIVE_OUTBOX}"),
    )
    .subquery("numbered")
)
#: the first undelivered rows of some chats (each chat's head and the rows right
#: behind it), in one statement for all the chats a claim took heads of
FOLLOWERS = (
    select(*QUEUED)
    .where(
        OUTBOX.c.id.in_(select(NUMBERED.c.id).where(NUMBERED.c.place <= bindparam("run_length")))
    )
    .order_by(OUTBOX.c.id)
    .with_for_update(skip_locked=True)
)
#: rows taken for sending, all with one lease (``Transaction._mark_claimed``)
MARK_CLAIMED = (
    update(table(OutboxRow))
    .where(table(OutboxRow).c.id.in_(bindparam("ids", expanding=True)))
    .values(
        status=OutboxStatus.SENDING,
        lease_until=bindparam("lease_until"),
        attempts=table(OutboxRow).c.attempts + 1,
    )
)
SENDING_IN = (
    select(OutboxRow.id, OutboxRow.destination)
    .where(
        col(OutboxRow.id).in_(bindparam("row_ids", expanding=True)),
        OutboxRow.status == OutboxStatus.SENDING,
    )
    .with_for_update()
)


def row_update(**values: Any) -> Bulk:
    """An UPDATE of one outbox row, by ``row_id``: run as an executemany, a batch's
    rows in one statement."""
    return Bulk(update(OUTBOX).where(OUTBOX.c.id == bindparam("row_id")).values(**values))


MARK_SENT = row_update(
    status=OutboxStatus.SENT,
    lease_until=None,
    sent_at=bindparam("sent_at"),
    receipt=bindparam("receipt"),
)
HAND_BACK = row_update(
    status=OutboxStatus.PENDING,
    lease_until=None,
    next_attempt_at=bindparam("due"),
    last_error=bindparam("reason"),
)
CONVERSATIONS = table(Conversation)
#: a touched conversation's row (``Transaction.touch``): the columns set are its keys
TOUCH = Bulk(update(CONVERSATIONS).where(CONVERSATIONS.c.id == bindparam("row_id")))
# Rows written as plain dicts (``Transaction._write_pending``)
INSERT_DEADLINES = Bulk(sa_insert(table(Deadline)))
INSERT_OUTBOX = Bulk(sa_insert(table(OutboxRow)))
INSERT_EVENTS = Bulk(sa_insert(table(InboundEvent)))
INSERT_THREADS = Bulk(sa_insert(table(WorkspaceThread)))
#: a new thread's columns but its id, which the database gives (nothing needs it)
THREAD_COLUMNS = tuple(
    column.name for column in table(WorkspaceThread).columns if column.name != "id"
)
#: a ref already known (the same platform message seen twice) stays as it is
INSERT_REFS = {
    name: Bulk(
        insert(table(MessageRef)).on_conflict_do_nothing(
            index_elements=["place", "chat_id", "external_id"]
        )
    )
    for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
#: a thread the platform has just made (``Transaction.thread_opened``): one statement,
#: no read first; a thread made anew (its topic deleted) replaces the old one's refs
OPEN_THREADS = {
    name: Bulk(
        insert(table(WorkspaceThread)).on_conflict_do_update(
            index_elements=["conversation_id", "workspace"],
            set_={
                "thread_ref": insert(table(WorkspaceThread)).excluded.thread_ref,
                "header_ref": insert(table(WorkspaceThread)).excluded.header_ref,
                "header_card": None,
            },
        )
    )
    for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
THREAD = select(WorkspaceThread).where(
    WorkspaceThread.conversation_id == bindparam("conversation_id"),
    WorkspaceThread.workspace == bindparam("workspace"),
)
CARDS_IN = (
    select(Conversation, Customer, CustomerIdentity)
    .join(Customer, col(Customer.id) == Conversation.customer_id)
    .outerjoin(
        CustomerIdentity,
        and_(
            col(CustomerIdentity.customer_id) == Conversation.customer_id,
            col(CustomerIdentity.channel) == Conversation.channel,
        ),
    )
    .where(col(Conversation.id).in_(bindparam("ids", expanding=True)))
    .order_by(col(Conversation.id), col(CustomerIdentity.id))
)
THREADS_IN = select(WorkspaceThread).where(
    col(WorkspaceThread.conversation_id).in_(bindparam("conversation_ids", expanding=True)),
    col(WorkspaceThread.workspace).in_(bindparam("workspaces", expanding=True)),
)
MESSAGE_BY_REF = (
    select(Message)
    .join(MessageRef, col(MessageRef.message_id) == Message.id)
    .where(
        MessageRef.place == bindparam("place"),
        MessageRef.chat_id == bindparam("chat_id"),
        MessageRef.external_id == bindparam("external_id"),
    )
)
REF = table(MessageRef).c
#: columns, not entities: a claim reads the sources of every copy it prepares
REFS_OF = (
    select(REF.message_id, REF.chat_id, REF.external_id)
    .where(
        REF.message_id.in_(bindparam("message_ids", expanding=True)),
        REF.place == bindparam("place"),
        REF.side == bindparam("side"),
    )
    .order_by(REF.id)
)
REFS = (
    select(MessageRef)
    .where(
        MessageRef.message_id == bindparam("message_id"),
        MessageRef.place == bindparam("place"),
        MessageRef.side == bindparam("side"),
    )
    .order_by(col(MessageRef.id))
)
