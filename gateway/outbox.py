"""Outbox workers: one per destination adapter, sending committed rows.

Claiming marks rows ``sending`` with a lease, so a second process (PostgreSQL,
``FOR UPDATE SKIP LOCKED``) never takes the same row, and a process that dies
mid-send leaves rows that become claimable again when the lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta

from gateway.adapter import Adapter
from gateway.claim import Selection, coalescible
from gateway.config import OutboxSection
from gateway.core import Core
from gateway.delivering import Outcome
from gateway.events import Delivery, Receipt
from gateway.ratelimit import Limiter, Reservation
from gateway.relay import opens_thread
from gateway.retry import Decision, Policy, decide
from storage import OutboxStatus, QueuedRow, Transaction
from storage.types import utcnow

log = logging.getLogger(__name__)

#: how long a claim holds its rows: a process that dies leaves them to the others
#: for this long at most, since the live one renews its leases every HEARTBEAT
LEASE = timedelta(seconds=15)
HEARTBEAT_SECONDS = 5.0
#: how often an idle worker looks for rows written by other processes
POLL_SECONDS = 1.0
#: how long a worker woken with sends still in flight waits for the others to end,
#: per send in flight, and at most: their outcomes, and the rows behind them, then
#: share one claim. A claim's transaction costs far more than a row in it, and
#: under load the rows ready at any moment are those whose chat's last send just
#: ended, a few at a time: claiming at each end would pay a transaction for each.
#: Under a light load few sends are out and the wait is a few milliseconds; it
#: never outlasts the sends in flight. (Measured: bench/RESULTS.md, load 1.)
GATHER_PER_SEND = 0.006
GATHER_SECONDS = 0.1
#: a claim that held rows back last time looks at the due heads this many times its
#: free places a page, and at most SCAN_MOST times: it reaches the chats that can
#: send past those that cannot (a throttled group's threads), without reading a
#: backlog of thousands on every claim
SCAN_PAGE = 4
SCAN_MOST = 64


class OutboxWorker:
    def __init__(self, core: Core, adapter: Adapter, settings: OutboxSection) -> None:
        self.core = core
        self.adapter = adapter
        self.settings = settings
        self.destination = adapter.name
        self._policy = Policy(
            settings.max_attempts, settings.base_delay_seconds, settings.max_delay_seconds
        )
        #: the adapter's own where it paces each of its calls (``paces_calls``): its
        #: calls outside deliveries (answers to commands) then count in the same
        self.limiter: Limiter = adapter.limiter or Limiter(adapter.rate_limits)
        self._paces_calls = adapter.paces_calls
        #: deliveries to the workspace in flight (``_claim`` keeps some room for
        #: customers' sends)
        self._workspace_inflight = 0
        self._wake = asyncio.Event()
        #: a send ended (``_gather``)
        self._ended = asyncio.Event()
        self._stopping = False
        self._paused_until = 0.0
        #: claimed rows' places in the limiter's counters, until their calls end
        self._reservations: dict[int, Reservation] = {}
        #: the last claim left rows for the limiter: the next looks further
        self._held_back = False
        #: the last claim failed in its transaction's extra work: the next prepares
        #: and records apart
        self._prepare_apart = False
        #: outcomes of sends ended since the last claim, recorded in the next one, and
        #: the sends waiting for that (each acknowledges nothing before it commits)
        self._outcomes: list[tuple[Outcome, asyncio.Future[None]]] = []
        #: the destination threads replies by earlier messages' refs (email)
        self._history = adapter.wants_history
        #: a thread's opening header takes the messages queued behind it along
        self._opens_with = adapter.opens_with_messages
        #: sends in flight at once: the config's, or less where the platform's
        #: servers take fewer connections from one client (``Adapter.max_in_flight``)
        ceiling = adapter.max_in_flight
        self.concurrency = min(settings.concurrency, ceiling or settings.concurrency)
        self._inflight: set[asyncio.Task[None]] = set()
        self._claimed: set[int] = set()  # rows this worker holds a lease on
        self._task: asyncio.Task[None] | None = None
        self._heart: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0
        self.rate_limited = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox:{self.destination}")
        self._heart = asyncio.create_task(self._beat(), name=f"outbox-leases:{self.destination}")

    async def _beat(self) -> None:
        """Renew the leases of the rows being sent, so that a lease can be short: on
        PostgreSQL another process takes a dead one's rows over within LEASE, not
        after minutes. A send longer than the lease keeps its row all the same."""
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            held = sorted(self._claimed)
            if not held:
                continue
            until = utcnow() + LEASE
            try:
                async with self.core.repository.transaction() as tx:
                    await tx.renew_leases(held, until)
            except Exception:
                log.warning(
                    "could not renew the leases of %d deliveries to %s", len(held),
                    self.destination, exc_info=True,
                )  # fmt: skip

    def wake(self) -> None:
        self._wake.set()

    async def stop(self, grace: float) -> None:
        """Stop claiming; give in-flight sends ``grace`` seconds, then cancel them.

        A cancelled send leaves its row ``sending``; its lease (or, on SQLite, the
        next start) makes it claimable again, so it is delivered after the restart.
        """
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._inflight:
            _done, pending = await asyncio.wait(self._inflight, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                log.warning(
                    "%d deliveries to %s still in flight at shutdown; they will be retried",
                    len(pending),
                    self.destination,
                )
                await asyncio.gather(*pending, return_exceptions=True)
        if self._heart is not None:  # the sends in flight kept their leases till here
            self._heart.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heart
        if self._claimed:
            # hand interrupted rows back now rather than when their lease runs out
            await self.core.repository.run(self._release)

    async def _release(self, tx: Transaction) -> None:
        for row_id in list(self._claimed):
            row = await tx.outbox_row(row_id, lock=True)
            if row is not None and row.status == OutboxStatus.SENDING:
                row.status, row.lease_until = OutboxStatus.PENDING, None
                row.attempts = max(0, row.attempts - 1)
                tx.add(row)
        self._claimed.clear()

    async def _run(self) -> None:
        try:
            await self._loop()
        finally:
            # sends ending from now on record their own outcomes (``_recorded``)
            outcomes, self._outcomes = self._outcomes, []
            await self._record_apart(outcomes)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            if self._inflight:
                # each send wakes the worker as it ends: a moment's wait lets the sends
                # ending together (and rows queued meanwhile) share one claim
                window = min(GATHER_SECONDS, GATHER_PER_SEND * len(self._inflight))
                await self._gather(loop.time() + window)
            self._wake.clear()
            outcomes, self._outcomes = self._outcomes, []
            # a send waiting for its outcome's record is as good as ended
            free = self.concurrency - len(self._inflight) + len(outcomes)
            rows: list[list[QueuedRow]] = []
            prepared: list[Delivery | Exception | None] | None = []
            if free > 0 and loop.time() >= self._paused_until:
                try:
                    rows, prepared = await self._claim(free, outcomes)
                except Exception:
                    log.exception("claiming deliveries for %s failed", self.destination)
                    rows, prepared = [], []
            await self._record_apart(outcomes)  # those the claim did not record
            for group in rows:
                self._claimed.update(r.id for r in group if r.id is not None)
            if prepared is None:
                try:
                    prepared = await self.core.delivering.prepare_many(rows, history=self._history)
                except Exception as exc:
                    prepared = [exc] * len(rows)
            for group, delivery in zip(rows, prepared, strict=True):
                task = asyncio.create_task(self._send(group, delivery))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
                task.add_done_callback(lambda _task: self._ended.set())
            claimed = len(rows)
            if claimed and claimed == free:
                continue  # maybe more are due: go again at once
            await self._idle(loop.time())

    async def _gather(self, until: float) -> None:
        """Wait until every send in flight has ended (each then waits for its outcome
        to be recorded by the next claim), or until ``until``."""
        loop = asyncio.get_running_loop()
        while len(self._outcomes) < len(self._inflight) and not self._stopping:
            left = until - loop.time()
            if left <= 0:
                return
            self._ended.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.wait(), timeout=left)

    async def _recorded(self, outcome: Outcome) -> None:
        """Record a send's outcome: in the worker's next claim while it runs, else
        (stopping) at once. Returns once it is committed."""
        if self._stopping or self._task is None or self._task.done():
            await self.core.delivering.delivered(*outcome)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outcomes.append((outcome, done))
        self._ended.set()
        self._wake.set()
        await done

    async def _record_apart(self, outcomes: list[tuple[Outcome, asyncio.Future[None]]]) -> None:
        """Outcomes the claim could not take (or failed with), each in a transaction
        of its own, as ``Core.delivered`` does: one that cannot be recorded fails
        alone."""
        for outcome, done in outcomes:
            if done.done():
                continue
            try:
                await self.core.delivering.delivered(*outcome)
            except Exception as exc:
                if not done.done():
                    done.set_exception(exc)
            else:
                if not done.done():
                    done.set_result(None)

    async def _claim(
        self, limit: int, outcomes: list[tuple[Outcome, asyncio.Future[None]]]
    ) -> tuple[list[list[QueuedRow]], list[Delivery | Exception | None] | None]:
        """Due rows, each with the rows coalesced behind it (a group goes out as one),
        and the groups prepared in the same transaction (None: prepare them apart).
        The ``outcomes`` of sends ended since the last claim are recorded first, in
        the same transaction (a chat's next row waits for its last one's record).

        One transaction per claim, not one each for the claim, its preparing and
        every send's record. When the transaction fails, nothing of it is kept: the
        outcomes are recorded apart and the next claim prepares apart
        (``Core.prepare_many``, which isolates each group), so a row that always
        fails to prepare or record never holds up the ones behind it.

        Only rows whose calls the limiter could let go now are taken (``claim.
        Selection``); the others stay unclaimed, so messages queued behind them meet
        them and go out together when they can, and other chats go meanwhile.
        """
        batch = max(1, self.adapter.max_batch)
        chosen = Selection(self.limiter, self.adapter, self.concurrency, self._workspace_inflight)
        together = not self._prepare_apart

        async def work(
            tx: Transaction,
        ) -> tuple[list[list[QueuedRow]], list[Delivery | Exception | None] | None]:
            if together and outcomes:
                await self.core.delivering.record_in(tx, [outcome for outcome, _done in outcomes])
            groups = []
            # past chats held back last time (to reach ones that can go), else no
            # wider than needed: each row looked at is read and locked
            scan = SCAN_PAGE * limit if self._held_back else limit
            heads = await tx.claim_outbox(
                self.destination,
                limit=limit,
                lease=LEASE,
                accept=chosen.ready,
                scan=scan,
                most=SCAN_MOST * limit,
                enough=chosen.enough,
            )
            chosen.keep_only({head.id for head in heads})
            followers: dict[int, list[QueuedRow]] = {}
            if batch > 1:
                chosen.carriers = {
                    head.chat_key: head
                    for head in heads
                    if coalescible(head) or self._opening(head, chosen.seen.get(head.id))
                }
                followers = await tx.claim_followers(
                    list(chosen.carriers.values()),
                    limit=batch - 1,
                    lease=LEASE,
                    accept=chosen.follows,
                )
            for head in heads:
                groups.append([head, *followers.get(head.id, ())])
            if not groups:
                return groups, []
            if not together:
                return groups, None
            return groups, await self.core.delivering.prepare_in(tx, groups, history=self._history)

        try:
            groups, prepared = await self.core.delivering.transact(work)
        except BaseException:
            chosen.abandon()
            self._prepare_apart = together
            raise
        if together:
            # recorded with the claim; apart, the caller records them (``_record_apart``)
            for _outcome, done in outcomes:
                if not done.done():
                    done.set_result(None)
        self._prepare_apart = False
        self._reservations.update(chosen.made)
        self._held_back = chosen.held_back
        return groups, prepared

    def _opening(self, row: QueuedRow, delivery: Delivery | None) -> bool:
        """A header that opens its thread, for a destination whose opening delivery
        posts the messages queued behind it too: one delivery, not two, and the first
        messages reach operators without waiting for the thread to be recorded.

        Only while the platform's limits let the header's calls and one more go at
        once: throttled, the messages wait for the header's record as before, and
        those the customer writes meanwhile join them in one call."""
        return (
            self._opens_with
            and row.kind == "header"
            and opens_thread(row.dedupe_key)
            and delivery is not None
            and self.limiter.affords(delivery, self.adapter.cost(delivery))
        )

    async def _idle(self, now: float) -> None:
        if self._wake.is_set():
            return  # a send ended or rows came while claiming: look again at once
        timeout = POLL_SECONDS
        held = self.limiter.held_for()
        if held > 0:
            timeout = min(timeout, held)
        if self._paused_until > now:
            timeout = min(timeout, self._paused_until - now)
        else:
            now_utc = utcnow()
            async with self.core.repository.transaction() as tx:
                due = await tx.next_outbox_due(self.destination, now_utc)
            if due is not None:
                seconds = (due - now_utc).total_seconds()
                if seconds > 0:
                    timeout = min(timeout, seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(timeout, 0.01))

    async def _send(self, group: list[QueuedRow], prepared: Delivery | Exception | None) -> None:
        row = group[0]
        reservation = self._reservations.pop(row.id, None)
        workspace = (row.payload or {}).get("audience") == "workspace"
        self._workspace_inflight += workspace
        try:
            await self._attempt(group, prepared, reservation)
        except asyncio.CancelledError:
            raise  # the row stays claimed; stop() hands it back
        except Exception:
            log.exception(
                "could not record the outcome of a delivery to %s; it is retried when its "
                "lease ends",
                self.destination,
                extra={"conversation_id": row.conversation_id, "channel": self.destination},
            )
        else:
            self._claimed.difference_update(r.id for r in group)
        finally:
            self._workspace_inflight -= workspace
            self.limiter.release(reservation)  # not sent, or no call was needed
            self._wake.set()

    async def _attempt(
        self,
        group: list[QueuedRow],
        prepared: Delivery | Exception | None,
        reservation: Reservation | None = None,
    ) -> None:
        """Send a group prepared at claim time (or the exception preparing it raised,
        which is handled like a failed send)."""
        row = group[0]
        assert row.id is not None
        context = {"conversation_id": row.conversation_id, "channel": self.destination}
        delivery: Delivery | None = None
        try:
            if isinstance(prepared, Exception):
                raise prepared
            delivery = prepared
            if delivery is None:
                await self.core.delivering.delivered(
                    row.id, Receipt(extra={"unchanged": True}), None
                )
                return
            cost = self.adapter.cost(delivery)
            async with self.limiter.slot(
                delivery, cost, reservation, upfront=not self._paces_calls
            ):
                receipt = await self.adapter.deliver(delivery)
        except Exception as exc:
            decision = decide(exc, row.attempts, self._policy)
            if decision.unexpected:
                # a bug in an adapter: never a reason to lose a message
                log.exception("adapter %s raised while delivering", self.destination, extra=context)
            await self._failed(group, delivery, decision, context)
        else:
            handed_back = sum(1 for r in receipt.more if r.extra.get("handed_back"))
            self.sent += len(group) - handed_back
            await self._recorded((row.id, receipt, delivery, [r.id for r in group[1:]]))
            self.adapter.recorded(receipt)

    async def _failed(
        self,
        group: list[QueuedRow],
        delivery: Delivery | None,
        decision: Decision,
        context: Mapping[str, object],
    ) -> None:
        """Act on ``retry.decide``'s decision for a group whose send failed."""
        if decision.retry_in is None:
            self.failed += len(group)
            for member in group:
                await self.core.delivering.failed(member.id, decision.reason)
            return
        if decision.held is not None:
            self.rate_limited += 1
            # an adapter that paces its calls logged the 429 at warning as it came
            log.log(
                logging.DEBUG if self._paces_calls else logging.WARNING,
                "%s answered 429: retry after %.1fs, held off for %s",
                self.destination,
                decision.retry_in,
                "the whole destination" if decision.held == "destination" else "its chat",
                extra=context,
            )
            if decision.held == "destination":
                self._paused_until = asyncio.get_running_loop().time() + decision.retry_in
            if delivery is not None:
                self.limiter.penalise(delivery, decision.retry_in, decision.held)
        else:
            log.info(
                "delivery to %s failed (attempt %d), retrying in %.1fs: %s",
                self.destination,
                group[0].attempts,
                decision.retry_in,
                decision.reason,
                extra=context,
            )
        await self._retry(group, decision.retry_in, decision.reason, count=decision.counts)

    async def _retry(
        self, group: list[QueuedRow], delay: float, reason: str, *, count: bool
    ) -> None:
        async def work(tx: Transaction) -> None:
            for row in group:
                current = await tx.outbox_row(row.id, lock=True)
                if current is None or current.status != OutboxStatus.SENDING:
                    continue
                current.status = OutboxStatus.PENDING
                current.next_attempt_at = utcnow() + timedelta(seconds=delay)
                current.lease_until = None
                current.last_error = reason[:2000]
                if not count:
                    current.attempts = max(0, current.attempts - 1)
                tx.add(current)

        await self.core.repository.run(work)
