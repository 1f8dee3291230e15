"""A customer's personal data: exported for a subject access request (GDPR article
15), erased on request (article 17), and the audit trail of who did what.

``export_customer`` gathers everything the gateway keeps about one customer: who
they are on each channel, their conversations, and what was written in them (their
own messages, the answers they got, and the team's internal notes about them; the
gateway's own operational notes are left out). Files are named by their reference:
the bytes stay on the platform they came from.
"""

from __future__ import annotations

import asyncio
import getpass
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.config import Config
from gateway.events import Outbound
from gateway.relay import chat_key
from storage import Direction, Repository, Transaction
from storage.types import utcnow

#: how each kind of message reads in an export
KINDS = {
    Direction.IN: "from the customer",
    Direction.OUT: "to the customer",
    Direction.AUTO: "automatic, to the customer",
    Direction.NOTE: "internal note",
}


def admin() -> str:
    """Who runs a command, for the audit trail: ``admin:<login>``."""
    try:
        return f"admin:{getpass.getuser()}"
    except (KeyError, OSError):
        return "admin"


def _at(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def export_customer(
    repository: Repository, reference: str, names: dict[str, str]
) -> dict[str, Any] | None:
    """Everything kept about the customer ``reference`` names, as JSON-ready data;
    None if there is no such customer. The export is recorded in the audit trail."""

    async def work(tx: Transaction) -> dict[str, Any] | None:
        customer = await tx.customer_by_reference(reference)
        if customer is None or customer.id is None:
            return None
        identities = await tx.identities_of(customer.id)
        conversations = await tx.conversations_of(customer.id)
        messages = await tx.messages_of_customer(customer.id)
        by_conversation: dict[int, list[dict[str, Any]]] = {}
        for m in messages:
            kind = KINDS.get(Direction(m.direction))
            if kind is None:
                continue  # the gateway's own notes, a held reply never sent
            by_conversation.setdefault(m.conversation_id, []).append(
                {
                    "id": m.id,
                    "at": _at(m.created_at),
                    "kind": kind,
                    "author": m.author_name,
                    "text": m.text,
                    "edited_at": _at(m.edited_at),
                    "deleted_by_author_at": _at(m.deleted_at),
                    "files": [
                        {k: a.get(k) for k in ("kind", "name", "mime", "size", "file_ref")}
                        for a in m.attachments or ()
                    ],
                }
            )
        kept = await tx.chat_states_of(customer.id)
        tx.audit(admin(), "export", customer_id=customer.id)
        return {
            "exported_at": utcnow().isoformat(),
            "customer": {
                "id": customer.id,
                "name": customer.display_name,
                "language": customer.language,
                "first_seen": _at(customer.created_at),
            },
            "identities": [
                {"channel": i.channel, "id": i.external_id, "username": i.username}
                for i in identities
            ],
            # what a channel keeps about a chat (a web visitor's name and address),
            # without the digests of its sign-in tokens
            "kept_by_channels": [
                {
                    "channel": k.channel,
                    "chat": k.chat_id,
                    **{key: v for key, v in k.data.items() if key != "tokens"},
                }
                for k in kept
            ],
            "conversations": [
                {
                    "id": c.id,
                    "channel": c.channel,
                    "status": str(c.status),
                    "opened_at": _at(c.created_at),
                    "resolved_at": _at(c.resolved_at),
                    "subject": c.subject,
                    "tags": list(c.tags or ()),
                    "operator": names.get(c.assignee_id or "", c.assignee_id),
                    "rating": c.csat_score,
                    "rating_comment": c.csat_comment,
                    "messages": by_conversation.get(c.id or 0, []),
                }
                for c in reversed(conversations)
            ],
        }

    return await repository.run(work)


async def revoke_sessions(repository: Repository, reference: str) -> str:
    """Sign the customer out of the web chat everywhere: their tokens (and the name
    and address they left there) are forgotten, their history stays. Recorded in
    the audit trail."""

    async def work(tx: Transaction) -> str:
        customer = await tx.customer_by_reference(reference)
        if customer is None or customer.id is None:
            raise LookupError(f"no customer {reference!r}")
        forgotten = await tx.forget_chat_states(customer.id)
        tx.audit(admin(), "revoke", customer_id=customer.id, detail=f"{forgotten} chat(s)")
        if not forgotten:
            return f"customer {customer.id} has no web chat session to end"
        return (
            f"customer {customer.id}: {forgotten} web chat session(s) ended; their widget "
            "starts a new chat (a running gateway takes at most 30 s to notice)"
        )

    return await repository.run(work)


@dataclass(frozen=True)
class Erasure:
    """What ``erase_customer`` did, or would do (``done`` False: a dry run)."""

    customer_id: int
    done: bool
    counts: dict[str, int]
    #: the workspace threads that still show the conversations: (workspace, thread)
    threads: list[tuple[str, str]]
    already: bool = False
    #: the conversations whose workspace copies are queued for removal (by number)
    conversations: tuple[int, ...] = ()

    def lines(self) -> list[str]:
        c = self.counts
        if self.already:
            return [f"customer {self.customer_id} was erased before: nothing left to remove"]
        head = "erased" if self.done else "would erase (run again with --yes)"
        lines = [
            f"customer {self.customer_id} {head}:",
            f"  {c['identities']} identity(ies) (the ids they wrote from) and their name",
            f"  the words and files of {c['messages']} message(s) in "
            f"{c['conversations']} conversation(s), kept as anonymous rows so reports add up",
        ]
        if self.done:
            lines.append(
                f"  {c['platform_ids']} platform id(s) of those messages; "
                f"{c['deliveries_cancelled']} delivery(ies) not yet made, cancelled"
            )
        if self.threads:
            lines.append(
                "  the copies in the workspaces, queued for removal by the running gateway "
                "(a Telegram topic goes whole; in Slack the app's messages and the card, "
                "while operators' own messages are theirs to delete; `gateway status` "
                "shows any that fail):"
                if self.done
                else "  and the copies in the workspaces:"
            )
            lines += [f"    {workspace} thread {ref}" for workspace, ref in self.threads]
        return lines


async def erase_customer(repository: Repository, reference: str, *, yes: bool) -> Erasure | None:
    """Remove the customer's personal data (GDPR article 17); with ``yes`` False,
    only say what would go. Idempotent; leaves an audit entry with counts only."""

    async def work(tx: Transaction) -> Erasure | None:
        customer = await tx.customer_by_reference(reference)
        if customer is None or customer.id is None:
            return None
        customer_id = customer.id
        erased_before = customer.display_name == erased_name(customer_id)
        counts = await tx.erasable(customer_id)
        found = [
            (t.conversation_id, Thread(t.workspace, t.thread_ref, t.header_ref))
            for t in await tx.threads_of_customer(customer_id)
        ]
        threads = [(t.workspace, t.thread_ref) for _, t in found]
        if erased_before and not counts["messages"] and not counts["identities"]:
            return Erasure(customer_id, False, counts, threads, already=True)
        if not yes:
            return Erasure(customer_id, False, counts, threads)
        # what the app posted in each thread, read before the erase forgets it
        copies = [
            (conversation_id, thread, await tx.workspace_refs(conversation_id, thread.workspace))
            for conversation_id, thread in found
        ]
        counts |= await tx.erase_customer_rows(customer_id, erased_name(customer_id))
        for conversation_id, thread, refs in copies:
            await _remove_thread(tx, conversation_id, thread, refs)
        tx.audit(
            admin(),
            "erase",
            customer_id=customer_id,
            detail=f"{counts['conversations']} conversation(s), {counts['messages']} message(s)",
        )
        return Erasure(customer_id, True, counts, threads, conversations=tuple(c for c, _ in found))

    return await repository.run(work)


#: an erase's platform ids per delivery: a few calls each, within a platform's limits
ERASE_CHUNK = 20


@dataclass(frozen=True)
class Thread:
    """Where a conversation lives in a workspace, as read before an erase."""

    workspace: str
    thread_ref: str
    header_ref: str | None


async def _remove_thread(
    tx: Transaction, conversation_id: int, thread: Thread, refs: list[str]
) -> None:
    """Queue the removal of a conversation's thread from its workspace: rows of the
    outbox like any delivery (paced, retried, survive a restart), written after the
    erase cancelled what was queued. The app's messages go first, its card last."""
    card = thread.header_ref or thread.thread_ref
    ids = [r for r in dict.fromkeys(refs) if r != card] + [card]
    chunks = [ids[i : i + ERASE_CHUNK] for i in range(0, len(ids), ERASE_CHUNK)]
    for number, chunk in enumerate(chunks):
        outbound = Outbound(
            destination=thread.workspace,
            audience="workspace",
            kind="erase",
            conversation_id=conversation_id,
            refs=tuple(chunk),
        )
        await tx.enqueue(
            destination=thread.workspace,
            chat_key=chat_key(outbound),
            conversation_id=conversation_id,
            message_id=None,
            kind="erase",
            payload=outbound.to_payload(),
            dedupe_key=f"{thread.workspace}:workspace:erase:{conversation_id}:{number}",
            fresh=True,
        )


def erased_name(customer_id: int) -> str:
    return f"(erased customer {customer_id})"


def retention_cutoffs(config: Config) -> tuple[datetime | None, datetime | None]:
    """Messages, and files, written before these are purged (None: kept)."""
    privacy = config.core.privacy
    now = utcnow()
    return (
        now - timedelta(days=privacy.keep_messages_days) if privacy.keep_messages_days else None,
        now - timedelta(days=privacy.keep_files_days) if privacy.keep_files_days else None,
    )


async def removal_outcomes(repository: Repository, erasure: Erasure, wait: float) -> list[str]:
    """What became of the removal of an erase's workspace copies, waiting up to
    ``wait`` seconds for the running gateway to make them."""
    conversations = sorted(set(erasure.conversations))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        async with repository.transaction() as tx:
            rows = await tx.erase_deliveries(conversations)
        pending = [r for r in rows if r[2] in ("pending", "sending")]
        if not pending or loop.time() >= deadline:
            break
        await asyncio.sleep(0.2)
    lines = []
    for workspace, conversation_id, status, error in rows:
        if status == "sent":
            lines.append(f"  removed from {workspace}: conversation #{conversation_id}'s copies")
        elif status == "failed":
            lines.append(
                f"  NOT removed from {workspace}: conversation #{conversation_id} ({error})"
            )
        else:
            lines.append(
                f"  still queued for {workspace}: conversation #{conversation_id} (no gateway "
                "running? it is removed when one runs)"
            )
    return list(dict.fromkeys(lines))
