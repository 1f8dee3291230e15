"""The outbox as a queue: rows written in the transaction that decided them,
claimed by workers a chat at a time (customers' chats first), leased and renewed
while their sends are out, released by a process that stops, and marked sent or
handed back. Part of ``Transaction`` (storage/repository.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select

from storage import statements as sql
from storage.models import (
    Conversation,
    OutboxRow,
    OutboxStatus,
    QueuedRow,
)
from storage.types import utcnow
from storage.unit import UnitOfWork


class OutboxQueue(UnitOfWork):
    async def enqueue(
        self,
        *,
        destination: str,
        chat_key: str,
        conversation_id: int | None,
        message_id: int | None,
        kind: str,
        payload: dict[str, Any],
        dedupe_key: str,
        fresh: bool = False,
        not_before: datetime | None = None,
    ) -> bool:
        """Add a delivery unless one with the same dedupe key exists already
        (``not_before``: not tried before then).

        A copy of a message inserted in this transaction cannot have a twin outside
        it, nor can a ``fresh`` key (one just made up), so only this transaction's
        own keys are checked then. Rows are written in the order they were
        enqueued (their ids keep that order)."""
        if dedupe_key in self._enqueued:
            return False
        if not fresh and message_id not in self.new_messages:
            existing = await self.session.exec(
                select(OutboxRow.id).where(OutboxRow.dedupe_key == dedupe_key)
            )
            if existing.first() is not None:
                return False
        self._enqueued.add(dedupe_key)
        now = utcnow()
        self._outbox.append(
            {
                "destination": destination,
                "chat_key": chat_key,
                "conversation_id": conversation_id,
                "message_id": message_id,
                "kind": kind,
                "payload": payload,
                "dedupe_key": dedupe_key,
                "status": OutboxStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": not_before or now,
                "lease_until": None,
                "last_error": None,
                "receipt": None,
                "created_at": now,
                "sent_at": None,
            }
        )
        self.touched.add(destination)
        return True

    async def unsent_copies(self, message_id: int) -> Sequence[OutboxRow]:
        """The outbox rows carrying a message that have not been tried yet (locked)."""
        await self._write_pending()
        result = await self.session.exec(
            select(OutboxRow)
            .where(
                OutboxRow.message_id == message_id,
                OutboxRow.kind == "message",
                OutboxRow.status == OutboxStatus.PENDING,
                OutboxRow.attempts == 0,
            )
            .with_for_update()
        )
        return result.all()

    async def all_copies(self, message_id: int) -> Sequence[OutboxRow]:
        await self._write_pending()
        result = await self.session.exec(
            select(OutboxRow).where(OutboxRow.message_id == message_id, OutboxRow.kind == "message")
        )
        return result.all()

    async def outbox_row(self, row_id: int, *, lock: bool = False) -> OutboxRow | None:
        await self._write_pending()
        stmt = select(OutboxRow).where(OutboxRow.id == row_id)
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.exec(stmt)).first()

    async def preload_sending(self, row_ids: Iterable[int]) -> None:
        """Read ahead, in one statement, what ``sending_rows`` will be asked about the
        rows of a batch of delivery outcomes (each recorded by its own unit)."""
        wanted = sorted(set(row_ids))
        if not wanted:
            return
        have = await self._sending(wanted)
        for row_id in wanted:
            self._ahead[("sending", row_id)] = have.get(row_id)

    async def sending_rows(self, row_ids: Sequence[int]) -> dict[int, str]:
        """Of these rows, those still ``sending``, locked: id -> destination.

        Columns, not entities: recording a delivery needs no more (what was sent
        comes with its outcome), and a batch of them costs one statement (none when
        ``preload_sending`` read them)."""
        rows: dict[int, str] = {}
        unknown = []
        for row_id in row_ids:
            known, found = self._take(("sending", row_id))
            if not known:
                unknown.append(row_id)
            elif found is not None:
                rows[row_id] = found
        if unknown:
            rows.update(await self._sending(unknown))
        return rows

    async def _sending(self, row_ids: list[int]) -> dict[int, str]:
        await self._write_pending()
        result = await self.session.exec(sql.SENDING_IN, params={"row_ids": row_ids})
        return {row_id: status for row_id, status in result.all() if row_id is not None}

    def mark_sent(self, rows: Sequence[dict[str, Any]]) -> None:
        """Rows delivered: each dict has ``id``, ``sent_at`` and ``receipt``. Written
        with the other pending rows: a batch's outcomes in one statement."""
        self._sent.extend(
            {"row_id": r["id"], "sent_at": r["sent_at"], "receipt": r["receipt"]} for r in rows
        )

    def hand_back(self, row_id: int, reason: str) -> None:
        """A row claimed but not sent, due again now: it was riding along in another
        row's delivery, and goes on its own from here. The attempt counts. Written
        with the other pending rows."""
        self._handed_back.append({"row_id": row_id, "due": utcnow(), "reason": reason[:2000]})

    async def claim_outbox(
        self,
        destination: str,
        *,
        limit: int,
        lease: timedelta,
        now: datetime | None = None,
        accept: Callable[[QueuedRow], bool] | None = None,
        scan: int | None = None,
        most: int | None = None,
        enough: Callable[[], bool] | None = None,
    ) -> list[QueuedRow]:
        """Take up to ``limit`` due deliveries, at most the oldest one per chat,
        customers' chats first, then in the order they were queued.

        A row whose chat still has an older undelivered row waits for it: order per
        chat is kept even when a delivery is being retried. Expired leases (a
        process died mid-send) make their rows claimable again. With ``accept``,
        due rows are looked at ``scan`` at a time, up to ``most`` of them, and only
        those it allows are taken (the others stay as they are, unclaimed): chats
        that cannot send now are passed over for the ones behind them, until
        ``enough`` says none of those could be taken either.
        """
        await self._write_pending()
        now = now or utcnow()
        page = max(limit, scan or 0) if accept else limit
        params: dict[str, Any] = {"destination": destination, "now": now, "limit": page}
        result = await self.session.exec(sql.CLAIM, params=params)
        found = result.all()
        if accept is None:
            rows = [QueuedRow(*columns[:-1]) for columns in found]
            self._mark_claimed(rows, now + lease)
            return rows
        rows = []
        looked = 0
        while True:
            full = False
            for columns in found:
                full = len(rows) == limit or (enough is not None and enough())
                if full:
                    break
                row = QueuedRow(*columns[:-1])
                if accept(row):
                    rows.append(row)
            looked += len(found)
            if full or len(rows) == limit or len(found) < page or looked >= (most or page):
                break
            *_, lane = found[-1]
            params.update(after_lane=lane, after_id=found[-1][0])
            result = await self.session.exec(sql.CLAIM_AFTER, params=params)
            found = result.all()
        self._mark_claimed(rows, now + lease)
        return rows

    def _mark_claimed(self, rows: Sequence[QueuedRow], lease_until: datetime) -> None:
        """Mark claimed rows as being sent: on the rows read now, in the database by
        one statement for all the claim's rows (``_write_pending``)."""
        if not rows:
            return
        if self._claims is None:
            self._claims = (lease_until, [])
        # one lease for the whole claim (heads and followers), one statement
        lease_until, ids = self._claims
        for row in rows:
            row.status = OutboxStatus.SENDING
            row.lease_until = lease_until
            row.attempts += 1
            ids.append(row.id)

    async def claim_followers(
        self,
        heads: Sequence[QueuedRow],
        *,
        limit: int,
        lease: timedelta,
        accept: Callable[[QueuedRow], bool],
        now: datetime | None = None,
    ) -> dict[int, list[QueuedRow]]:
        """Also take, for each of ``heads``, up to ``limit`` rows right behind it in
        its chat that ``accept`` allows; one statement for all the heads.

        A chat's run stops at its first row that may not go now (not accepted, not
        due, being sent): order within the chat holds, and what is taken goes out
        together with the head, in one delivery. Returns head id -> its followers.
        """
        if not heads:
            return {}
        if self._rows_pending():
            await self._write_pending()
        # else the heads' claim marks wait, to be written with their followers' in
        # one statement: read here, a head is still pending, and it is passed over
        # all the same (the rows of its run up to it are skipped)
        now = now or utcnow()
        destination = heads[0].destination
        assert all(head.destination == destination for head in heads)
        result = await self.session.exec(
            sql.FOLLOWERS,
            params={
                "destination": destination,
                "chat_keys": sorted({head.chat_key for head in heads}),
                "run_length": limit + 1,  # the head is each chat's first
            },
        )
        runs: dict[str, list[QueuedRow]] = {}
        for columns in result.all():
            row = QueuedRow(*columns)
            runs.setdefault(row.chat_key, []).append(row)
        taken: dict[int, list[QueuedRow]] = {}
        for head in heads:
            followers = taken[head.id] = []
            for row in runs.get(head.chat_key, ()):
                if row.id <= head.id:
                    continue
                if (
                    len(followers) == limit
                    or row.status != OutboxStatus.PENDING
                    or row.next_attempt_at > now
                    or not accept(row)
                ):
                    break
                followers.append(row)
        self._mark_claimed([row for rows in taken.values() for row in rows], now + lease)
        return taken

    async def next_outbox_due(self, destination: str, now: datetime) -> datetime | None:
        """When the next retry falls due. Rows due already but waiting behind an
        older row of their chat are not counted: that row's completion wakes them."""
        await self._write_pending()
        result = await self.session.exec(
            select(func.min(OutboxRow.next_attempt_at)).where(
                OutboxRow.destination == destination,
                OutboxRow.status == OutboxStatus.PENDING,
                col(OutboxRow.next_attempt_at) > now,
            )
        )
        return result.one()

    async def renew_leases(self, row_ids: Sequence[int], until: datetime) -> int:
        """Extend the leases of rows this process is still sending (a heartbeat): a
        lease can then be short, and a dead process's rows are taken over soon."""
        if not row_ids:
            return 0
        await self._write_pending()
        result = await self.session.exec(
            update(OutboxRow)
            .where(
                col(OutboxRow.id).in_(list(row_ids)),
                col(OutboxRow.status) == OutboxStatus.SENDING,
            )
            .values(lease_until=until)
        )
        return int(result.rowcount or 0)

    async def release_leases(self) -> int:
        """Make every in-flight row claimable: for a single-process database at start."""
        await self._write_pending()
        result = await self.session.exec(
            update(OutboxRow)
            .where(col(OutboxRow.status) == OutboxStatus.SENDING)
            .values(status=OutboxStatus.PENDING, lease_until=None)
        )
        return int(result.rowcount or 0)

    # -- reporting ----------------------------------------------------------------

    async def count_by_status(self) -> dict[str, int]:
        result = await self.session.exec(
            select(Conversation.status, func.count()).group_by(Conversation.status)
        )
        return {str(status): int(count) for status, count in result.all()}

    async def outbox_counts(self) -> dict[tuple[str, str], int]:
        """(destination, status) -> rows, for everything not yet sent."""
        await self._write_pending()
        result = await self.session.exec(
            select(OutboxRow.destination, OutboxRow.status, func.count())
            .where(OutboxRow.status != OutboxStatus.SENT)
            .group_by(OutboxRow.destination, OutboxRow.status)
        )
        return {(dest, str(status)): int(count) for dest, status, count in result.all()}
