"""A customer's history and search over what was written, for the CLI
(``gateway history``, ``gateway search``, ``gateway link``) and ``/history``.

A customer is one person across channels when the gateway knows it: the same
platform id, or identities an admin linked (``link_customers``): then every
conversation of theirs, on any channel, is in their history and on their cards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from gateway.cards import STATUS_TEXT
from storage import Conversation, Customer, CustomerIdentity, Repository, Transaction
from storage.history_queries import Hit


@dataclass(frozen=True)
class CustomerHistory:
    customer: Customer
    identities: list[CustomerIdentity]
    conversations: list[Conversation]


async def customer_history(repository: Repository, reference: str) -> CustomerHistory | None:
    async with repository.transaction() as tx:
        customer = await tx.customer_by_reference(reference)
        if customer is None or customer.id is None:
            return None
        return CustomerHistory(
            customer,
            list(await tx.identities_of(customer.id)),
            list(await tx.conversations_of(customer.id)),
        )


def render_history(history: CustomerHistory, names: dict[str, str], zone: tzinfo) -> str:
    customer = history.customer
    lines = [f"Customer {customer.id}: {customer.display_name}"]
    for identity in history.identities:
        who = f" @{identity.username}" if identity.username else ""
        lines.append(f"  {identity.channel}: {identity.external_id}{who}")
    if not history.conversations:
        lines.append("No conversations.")
        return "\n".join(lines)
    lines.append(f"{len(history.conversations)} conversation(s), newest first:")
    for c in history.conversations:
        lines.append("  " + conversation_line(c, names, zone))
    return "\n".join(lines)


def conversation_line(c: Conversation, names: dict[str, str], zone: tzinfo) -> str:
    parts = [
        f"#{c.id} {c.created_at.astimezone(zone):%Y-%m-%d %H:%M} {c.channel}, "
        f"{STATUS_TEXT.get(c.status, c.status)}"
    ]
    if c.assignee_id:
        parts.append(names.get(c.assignee_id, c.assignee_id))
    if c.csat_score is not None:
        parts.append(f"CSAT {c.csat_score}" + (f" “{c.csat_comment}”" if c.csat_comment else ""))
    if c.tags:
        parts.append(" ".join(f"#{t}" for t in c.tags))
    if c.subject:
        parts.append(f"“{c.subject[:60]}”")
    return " · ".join(parts)


async def search(repository: Repository, words: str, since: datetime, limit: int) -> list[Hit]:
    """Bring SQLite's index up to date, then search it (PostgreSQL's is always)."""

    async def index(tx: Transaction) -> int:
        return await tx.index_messages()

    while await repository.run(index):
        pass
    async with repository.transaction() as tx:
        return await tx.search_messages(words, since, limit)


def render_hits(hits: list[Hit], zone: tzinfo) -> str:
    if not hits:
        return "Nothing found."
    who = {"in": "customer", "out": "operator", "note": "note"}
    lines = []
    for hit in hits:
        author = hit.customer_name if hit.direction == "in" else hit.author_name or ""
        lines.append(
            f"#{hit.conversation_id} {hit.created_at.astimezone(zone):%Y-%m-%d %H:%M} "
            f"{hit.channel} · {who.get(hit.direction, hit.direction)} {author}: "
            + " ".join(hit.snippet.split())
        )
    return "\n".join(lines)


async def link_customers(repository: Repository, source: str, target: str) -> str:
    """Make ``source`` and ``target`` one customer: ``source``'s identities and
    conversations move to ``target``, and ``source`` is removed. The answer says
    what moved (or why nothing did)."""

    async def work(tx: Transaction) -> str:
        a = await tx.customer_by_reference(source)
        b = await tx.customer_by_reference(target)
        if a is None or b is None:
            missing = source if a is None else target
            return f"no customer {missing!r}"
        if a.id == b.id:
            return f"{source!r} and {target!r} are already one customer ({a.id})"
        assert a.id is not None and b.id is not None
        done = (
            f"customer {a.id} ({a.display_name}) is now part of customer {b.id} ({b.display_name})"
        )
        identities, conversations = await tx.merge_customers(a.id, b.id)
        return f"{done}: {identities} identity(ies) and {conversations} conversation(s) moved"

    return await repository.run(work)
