"""What one outbox claim decides about the rows it looks at.

A claim reads the first undelivered row of each chat (customers' chats first) and
takes only those whose calls the platform's limits let go now: a row that would
wait stays unclaimed, so the chats behind it are served meanwhile and the messages
queued behind it join it later, in one call. ``Selection`` holds the claim's
reservations in the limiter until the rows' sends end (or are not made), and keeps
the workspace's rows to three quarters of the sends in flight, so a group throttled by its
20 messages a minute never fills every place customers' sends need.
"""

from __future__ import annotations

from gateway.adapter import Adapter
from gateway.events import Delivery, Outbound
from gateway.ratelimit import Limiter, Reservation
from storage import QueuedRow

#: one in this many of the sends in flight is kept from the workspace's deliveries
#: for customers' (none in a pool under this size: a small pool is not split)
CUSTOMERS_SHARE = 4


def coalescible(row: QueuedRow) -> bool:
    """A customer's message on its way to a workspace thread: such rows, queued one
    behind the other, may go out together (one call for many when backlogged)."""
    payload = row.payload or {}
    return (
        row.kind == "message"
        and payload.get("audience") == "workspace"
        and payload.get("author_role") == "customer"
    )


def estimate(outbound: Outbound, row: QueuedRow) -> Delivery:
    """A row's delivery as a claim sees it, before it is prepared: enough for the
    limiter's keys and the adapter's cost. Its thread is taken to exist (``""``):
    preparing finds it, and a thread still to open is its header's to open."""
    thread = "" if outbound.audience == "workspace" else None
    return Delivery(outbound=outbound, attempt=row.attempts, thread_ref=thread)


class Selection:
    def __init__(
        self, limiter: Limiter, adapter: Adapter, concurrency: int, workspace_inflight: int
    ) -> None:
        self.limiter = limiter
        self.adapter = adapter
        #: each head row's reservation, until its send ends
        self.made: dict[int, Reservation] = {}
        #: some row could not go now: the next claim looks further
        self.held_back = False
        #: the heads' deliveries as the limiter saw them
        self.seen: dict[int, Delivery] = {}
        kept = concurrency // CUSTOMERS_SHARE
        self.workspace_room = concurrency - kept - workspace_inflight
        #: each carrying head by its chat, for its followers (one head per chat)
        self.carriers: dict[str, QueuedRow] = {}
        #: heads taken for the workspace: each holds a place of ``workspace_room``
        self._workspace: set[int] = set()
        #: the claim has reached the workspace's rows (a claim reads customers' first)
        self._in_workspace = False

    def enough(self) -> bool:
        """Nothing further can be taken: the claim reads customers' chats first, and
        has reached the workspace's with no room left for them (each row looked at
        past this would be read, parsed and passed over)."""
        return self._in_workspace and self.workspace_room <= 0

    def ready(self, row: QueuedRow) -> bool:
        """Whether a head row may be taken now; if so, its calls are reserved."""
        try:
            outbound = Outbound.from_payload(row.payload or {})
        except Exception:
            return True  # preparing it will say what is wrong
        assert row.id is not None
        self.drop(row.id)  # the claim's transaction ran again
        delivery = self.seen[row.id] = estimate(outbound, row)
        workspace = outbound.audience == "workspace"
        self._in_workspace = self._in_workspace or workspace
        if workspace and self.workspace_room <= 0:
            self.held_back = True
            return False
        reservation = self.limiter.reserve(delivery, self.adapter.cost(delivery))
        if reservation is None:
            self.held_back = True
            return False
        self.made[row.id] = reservation
        if workspace:
            self._workspace.add(row.id)
            self.workspace_room -= 1
        return True

    def follows(self, row: QueuedRow) -> bool:
        """A row behind a carrying head that may go in the head's delivery: one more
        message in the same call (where they are copied together) or calls paced
        one by one after it (``Limiter.call``)."""
        return row.chat_key in self.carriers and coalescible(row)

    def drop(self, row_id: int) -> None:
        self.limiter.release(self.made.pop(row_id, None))
        if row_id in self._workspace:
            self._workspace.discard(row_id)
            self.workspace_room += 1

    def keep_only(self, taken: set[int | None]) -> None:
        """Give back what was reserved for rows accepted but not taken (another
        process had them locked)."""
        for row_id in [r for r in self.made if r not in taken]:
            self.drop(row_id)

    def abandon(self) -> None:
        for row_id in list(self.made):
            self.drop(row_id)
