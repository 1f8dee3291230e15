"""Deliveries between the outbox and the adapters: what a queued row becomes when it
is sent, and what came of it.

An outbox row holds what to say, written when it was decided. Where and whether
are known only at send time: the thread that exists now, a header that already
shows the conversation as it is, the copies an edit must change, the message a
reply quotes. ``prepare`` resolves them for a claim of rows in one transaction
(what the rows look up goes out together). ``delivered``, ``record_in`` and
``failed`` record what came of a send: the platform's ids for later edits and
replies, the thread, the row's status; sends that end together share a
transaction (``GroupCommit``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, replace
from typing import Any, TypeVar

from gateway.events import Delivery, Outbound, Receipt
from gateway.groupcommit import GroupCommit
from gateway.relay import Relay
from storage import (
    Direction,
    OutboxStatus,
    QueuedRow,
    Repository,
    Transaction,
    WorkspaceThread,
    is_database_failure,
)
from storage.types import utcnow

log = logging.getLogger(__name__)
#: how much of a reply's target is quoted where the target itself is not there
QUOTE_CHARS = 80
T = TypeVar("T")
#: one retried transaction of the core's (``Core._run``): deadlines planned before
#: it commits, the outbox woken after
Runner = Callable[[Callable[[Transaction], Awaitable[Any]]], Awaitable[Any]]


class Delivering:
    def __init__(self, repository: Repository, relay: Relay, run: Runner) -> None:
        self.repository = repository
        self.relay = relay
        self._run = run
        #: delivery outcomes (and threads opened meanwhile) share transactions when
        #: many arrive at once
        self._records = GroupCommit(run, prepare=_read_sending)

    async def along(self, work: Callable[[Transaction], Awaitable[None]]) -> None:
        """``work`` in the transaction of the outcomes being recorded now (a thread
        the platform just made: ``Core.thread_opened``)."""
        await self._records.run(work, hint=[])

    async def prepare(
        self, row: QueuedRow, followers: Sequence[QueuedRow] = (), *, history: bool = True
    ) -> Delivery | None:
        """Resolve what only exists now: the thread, the header, the copies to edit.

        A header row asks for the header to show the conversation as it is when it
        is sent, not as it was when the row was written; None means the header
        already shows exactly that, and nothing needs sending. ``followers`` are rows
        coalesced behind ``row``; they ride along in ``Delivery.more``. ``history``:
        the destination threads replies by the refs of earlier messages (email).
        """
        async with self.repository.transaction() as tx:
            (prepared,) = await self.prepare_in(tx, [[row, *followers]], history=history)
        if isinstance(prepared, Exception):
            raise prepared
        return prepared

    async def prepare_many(
        self, groups: Sequence[Sequence[QueuedRow]], *, history: bool = True
    ) -> list[Delivery | Exception | None]:
        """``prepare`` for many groups (a group: a row and its followers) in one
        transaction of their own; a group that cannot be prepared gets its exception,
        the others are not held back by it."""
        try:
            async with self.repository.transaction() as tx:
                return await self.prepare_in(tx, groups, history=history)
        except Exception:
            if len(groups) < 2:
                raise
        results: list[Delivery | Exception | None] = []
        for group in groups:
            try:
                results.append(await self.prepare(group[0], group[1:], history=history))
            except Exception as exc:
                results.append(exc)
        return results

    async def prepare_in(
        self, tx: Transaction, groups: Sequence[Sequence[QueuedRow]], *, history: bool = True
    ) -> list[Delivery | Exception | None]:
        """``prepare_many`` in the caller's transaction (an outbox worker's claim: one
        transaction per claim, not two). What the groups look up goes out together:
        their threads in one statement, their copies' sources in one per place. A
        group that cannot be prepared gets its exception; a database error is raised,
        for the transaction cannot go on after it."""
        known = _Lookups(history)
        parsed: list[list[Outbound] | Exception] = []
        for group in groups:
            try:
                parsed.append([Outbound.from_payload(r.payload) for r in group])
            except Exception as exc:
                parsed.append(exc)
        await self._look_up(
            tx, [o for each in parsed if not isinstance(each, Exception) for o in each], known
        )
        results: list[Delivery | Exception | None] = []
        for group, outbounds in zip(groups, parsed, strict=True):
            if isinstance(outbounds, Exception):
                results.append(outbounds)
                continue
            try:
                results.append(await self._prepare_group(tx, group, outbounds, known))
            except Exception as exc:
                if is_database_failure(exc):
                    raise
                results.append(exc)
        return results

    @staticmethod
    async def _look_up(tx: Transaction, outbounds: Sequence[Outbound], known: _Lookups) -> None:
        """The threads, cards and copies' sources of a batch of deliveries, in a few
        statements."""
        wanted: dict[tuple[str, str], set[int]] = {}
        places: set[tuple[int, str]] = set()
        cards = {o.conversation_id for o in outbounds if o.kind == "header"}
        if known.history:
            cards.update(o.conversation_id for o in outbounds if o.audience == "customer")
        await tx.preload_cards(cards)
        await tx.earlier_conversations(o.conversation_id for o in outbounds if o.kind == "header")
        for outbound in outbounds:
            if _copyable(outbound) and outbound.message_id is not None:
                other = "workspace" if outbound.audience == "customer" else "customer"
                wanted.setdefault((outbound.destination, other), set()).add(outbound.message_id)
            if outbound.audience == "workspace" and outbound.kind != "notice":
                places.add((outbound.conversation_id, outbound.destination))
        for (place, side), ids in wanted.items():
            found = await tx.refs_of(sorted(ids), place, side)
            for message_id in ids:
                known.refs[(message_id, place, side)] = found.get(message_id, [])
        if places:
            threads = await tx.threads_of(places)
            for where in places:
                known.threads[where] = threads.get(where)

    async def _prepare_group(
        self,
        tx: Transaction,
        group: Sequence[QueuedRow],
        outbounds: Sequence[Outbound],
        known: _Lookups,
    ) -> Delivery | None:
        # a header carrying messages (the thread's opening one) goes even when the
        # card it shows is unchanged: the messages need their delivery
        head = await self._prepare(tx, group[0], outbounds[0], known, needed=len(group) > 1)
        pairs = zip(group[1:], outbounds[1:], strict=True)
        more = [await self._prepare(tx, f, o, known) for f, o in pairs]
        if head is None:
            return None
        # followers are messages, never header refreshes, so none is None; they stay
        # aligned with their rows, which delivered() relies on
        assert all(d is not None for d in more)
        return replace(head, more=tuple(more))  # type: ignore[arg-type]

    async def _prepare(
        self,
        tx: Transaction,
        row: QueuedRow,
        outbound: Outbound,
        known: _Lookups,
        *,
        needed: bool = False,
    ) -> Delivery | None:
        thread_ref = header_ref = None
        edit_refs: tuple[str, ...] = ()
        source_chat: str | None = None
        source_ids: tuple[str, ...] = ()
        if outbound.kind == "notice":
            thread_ref = outbound.thread  # where the command was typed
        elif outbound.audience == "workspace":
            where = (outbound.conversation_id, outbound.destination)
            if where not in known.threads:
                known.threads[where] = await tx.thread(*where)
            thread = known.threads[where]
            if thread is not None:
                thread_ref, header_ref = thread.thread_ref, thread.header_ref
            if outbound.kind == "header":
                conversation = await tx.conversation(outbound.conversation_id)
                if conversation is not None:
                    card = await self.relay.card(tx, conversation)
                    if not needed and thread is not None and thread.header_card == asdict(card):
                        return None
                    outbound = replace(outbound, card=card)
        if _copyable(outbound) and outbound.message_id is not None:
            other = "workspace" if outbound.audience == "customer" else "customer"
            key = (outbound.message_id, outbound.destination, other)
            if key not in known.refs:
                known.refs[key] = list(
                    await tx.refs(outbound.message_id, outbound.destination, other)
                )
            refs = known.refs[key]
            if refs:
                source_chat = refs[0].chat_id
                source_ids = tuple(r.external_id for r in refs if r.chat_id == source_chat)
        if outbound.kind in ("edit", "delete") and outbound.message_id is not None:
            edited = await tx.refs(outbound.message_id, outbound.destination, outbound.audience)
            edit_refs = tuple(r.external_id for r in edited)
        reply_ref, reply_quote = await self._reply_context(tx, outbound)
        history: tuple[str, ...] = ()
        subject = replying_to = None
        if outbound.audience == "customer" and known.history:
            conversation = await tx.conversation(outbound.conversation_id)
            if conversation is not None and conversation.channel == outbound.destination:
                subject = conversation.subject
                earlier = await tx.conversation_refs(
                    conversation.id,  # type: ignore[arg-type]
                    outbound.destination,
                    conversation.chat_id,
                )
                history = tuple(ref for ref, _ in earlier)
                replying_to = next(
                    (ref for ref, direction in reversed(earlier) if direction == Direction.IN),
                    history[-1] if history else None,
                )
        return Delivery(
            outbound=outbound,
            attempt=row.attempts,
            key=row.dedupe_key,
            thread_ref=thread_ref,
            header_ref=header_ref,
            edit_refs=edit_refs,
            source_chat=source_chat,
            source_ids=source_ids,
            history=history,
            replying_to=replying_to,
            subject=subject,
            reply_ref=reply_ref,
            reply_quote=reply_quote,
        )

    async def _reply_context(
        self, tx: Transaction, outbound: Outbound
    ) -> tuple[str | None, str | None]:
        """Where a reply's target is in the place this goes (its id there), or the
        start of its text to quote where it never went there."""
        if outbound.reply_to is None or outbound.kind != "message":
            return None, None
        refs = await tx.refs(outbound.reply_to, outbound.destination, outbound.audience)
        if refs:
            return refs[0].external_id, None
        target = await tx.message(outbound.reply_to)
        if target is None or not target.text:
            return None, None
        if outbound.audience == "customer" and target.direction in (
            Direction.NOTE,
            Direction.SYSTEM,
        ):
            return None, None  # what operators keep among themselves is never quoted out
        text = " ".join(target.text.split())
        return None, text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"

    async def delivered(
        self,
        row_id: int,
        receipt: Receipt,
        sent: Delivery | None,
        followers: Sequence[int] = (),
    ) -> None:
        """Record a delivery made (``sent``), or found unnecessary (None), with the
        rows coalesced into it (``followers``, answered by ``receipt.more``)."""
        outcomes = _outcomes(row_id, receipt, sent, followers)

        async def run(tx: Transaction) -> None:
            await self._record(tx, outcomes)

        await self._records.run(run, hint=[row for row, _receipt, _sent in outcomes])

    async def record_in(self, tx: Transaction, outcomes: Sequence[Outcome]) -> None:
        """``delivered`` for many deliveries in the caller's transaction (an outbox
        worker's next claim: sends that end between two claims cost no transaction
        of their own)."""
        await self._record(tx, [each for outcome in outcomes for each in _outcomes(*outcome)])

    async def transact(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        """``work`` in a retried transaction of the core's: the deadlines of the
        conversations it changed are planned before it commits, and the workers it
        gave rows to wake after."""
        return await self._run(work)

    async def _record(
        self, tx: Transaction, outcomes: Sequence[tuple[int, Receipt, Delivery | None]]
    ) -> None:
        """Mark rows sent and keep what their receipts say: a few statements for the
        whole group, whatever its size (a coalesced backlog is many rows)."""
        rows = await tx.sending_rows([row_id for row_id, _receipt, _sent in outcomes])
        # the threads whose records change, in one statement
        await tx.threads_of(
            (sent.outbound.conversation_id, rows[row_id])
            for row_id, receipt, sent in outcomes
            if row_id in rows
            and sent is not None
            and sent.outbound.audience == "workspace"
            and sent.outbound.kind != "notice"
            and (sent.outbound.kind == "header" or receipt.thread_ref)
        )
        now = utcnow()
        sent_rows: list[dict] = []
        refs: list[dict] = []
        for row_id, receipt, sent in outcomes:
            if row_id not in rows:
                continue  # recorded already, or handed back meanwhile
            if receipt.extra.get("handed_back"):
                # it rode along in another row's delivery and did not get out
                tx.hand_back(row_id, str(receipt.extra["handed_back"]))
                continue
            destination = rows[row_id]
            sent_rows.append(
                {
                    "id": row_id,
                    "sent_at": now,
                    "receipt": {
                        "external_ids": list(receipt.external_ids),
                        "chat_id": receipt.chat_id,
                        "thread_ref": receipt.thread_ref,
                        **receipt.extra,
                    },
                }
            )
            if sent is None:
                continue  # nothing needed sending (a header already showing it all)
            # what was sent is the row's own payload, parsed when it was prepared
            outbound = sent.outbound
            if outbound.kind == "header" and outbound.card:
                await tx.save_thread(
                    outbound.conversation_id,
                    destination,
                    receipt.thread_ref,
                    receipt.header_ref,
                    asdict(outbound.card),
                )
            elif (
                outbound.kind != "notice"
                and outbound.audience == "workspace"
                and receipt.thread_ref
            ):
                # the adapter had to open the thread anew (an admin deleted the topic)
                await tx.save_thread(
                    outbound.conversation_id,
                    destination,
                    receipt.thread_ref,
                    receipt.header_ref,
                    None,
                )
                conversation = await tx.conversation(outbound.conversation_id)
                if conversation is not None:
                    await self.relay.header(tx, conversation)
            if outbound.kind == "message" and outbound.message_id and receipt.external_ids:
                chat = receipt.chat_id or outbound.chat_id or f"thread:{receipt.thread_ref}"
                refs.extend(
                    {
                        "message_id": outbound.message_id,
                        "place": destination,
                        "side": outbound.audience,
                        "chat_id": chat,
                        "external_id": external_id,
                    }
                    for external_id in dict.fromkeys(receipt.external_ids)
                )
            if outbound.audience == "customer" and outbound.author_role == "operator":
                conversation = await tx.conversation(outbound.conversation_id)
                if conversation is not None and conversation.first_response_at is None:
                    # the first reply the customer actually received, not the first
                    # sent: credited to whoever wrote it, whoever has it now
                    conversation.first_response_at = now
                    conversation.first_responder_id = outbound.author_id
                    tx.add(conversation)
        tx.mark_sent(sent_rows)
        await tx.add_ref_rows(refs)

    async def failed(self, row_id: int, reason: str) -> None:
        """A delivery that will never happen: record it and tell the operators."""

        async def run(tx: Transaction) -> None:
            row = await tx.outbox_row(row_id, lock=True)
            if row is None or row.status not in (OutboxStatus.SENDING, OutboxStatus.PENDING):
                return
            row.status = OutboxStatus.FAILED
            row.last_error = reason[:2000]
            row.lease_until = None
            tx.add(row)
            outbound = Outbound.from_payload(row.payload)
            log.error(
                "delivery to %s failed for good: %s",
                row.destination,
                reason,
                extra={"conversation_id": outbound.conversation_id, "channel": row.destination},
            )
            if outbound.audience == "customer":
                conversation = await tx.conversation(outbound.conversation_id)
                if conversation is not None:
                    await self.relay.system(tx, conversation, f"⚠ Not delivered: {reason}")
            elif outbound.kind == "message" and outbound.author_role != "system":
                # a message operators will not see where it should be: they see that
                # (a notice's own failure says nothing more: no loop)
                conversation = await tx.conversation(outbound.conversation_id)
                if conversation is not None:
                    await self.relay.system(
                        tx, conversation, f"⚠ Not shown in {row.destination}: {reason}"
                    )

        await self._run(run)


async def _read_sending(tx: Transaction, hints: list[object]) -> None:
    """The rows a batch of delivery outcomes will each record, in one statement."""
    await tx.preload_sending(row_id for hint in hints for row_id in hint)  # type: ignore[attr-defined]


#: a delivery's outcome as an outbox worker reports it: the row, its receipt, what
#: was sent (None: nothing needed sending), and the rows coalesced into it
Outcome = tuple[int, Receipt, Delivery | None, Sequence[int]]


def _outcomes(
    row_id: int, receipt: Receipt, sent: Delivery | None, followers: Sequence[int]
) -> list[tuple[int, Receipt, Delivery | None]]:
    """One outcome per row: the followers' receipts and deliveries are the head's
    ``more``, in order."""
    outcomes = [(row_id, receipt, sent)]
    for number, follower in enumerate(followers):
        more = receipt.more[number] if number < len(receipt.more) else Receipt()
        along = sent.more[number] if sent and number < len(sent.more) else None
        outcomes.append((follower, more, along))
    return outcomes


def _copyable(outbound: Outbound) -> bool:
    """A message an adapter may copy from where it was written (``Delivery.source_ids``):
    a customer's, or one with files. Others (an operator's text, the bot's) are
    rendered anew, so their sources need no lookup."""
    return (
        outbound.kind == "message"
        and outbound.message_id is not None
        and (outbound.author_role == "customer" or bool(outbound.attachments))
    )


class _Lookups:
    """What preparing a batch of deliveries has looked up already: the rows of one
    conversation's backlog share its thread, and their sources come in one query."""

    def __init__(self, history: bool) -> None:
        self.history = history
        self.threads: dict[tuple[int, str], WorkspaceThread | None] = {}
        self.refs: dict[tuple[int, str, str], list[Any]] = {}
