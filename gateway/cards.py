"""How a conversation's state reads in any workspace: the words and icons for a status.

Adapters render cards in their platform's markup; what the states are called is one
decision, made here, so Telegram and Slack never disagree about it.
"""

from __future__ import annotations

from gateway.events import Attachment, ConversationCard, Outbound
from storage import Priority

STATUS_ICON = {
    "new": "🆕",
    "queued": "⏳",
    "assigned": "🟢",
    "waiting_customer": "💬",
    "snoozed": "💤",
    "resolved": "✅",
    "closed": "✅",
}
STATUS_TEXT = {
    "new": "new",
    "queued": "waiting in the queue",
    "assigned": "assigned",
    "waiting_customer": "waiting for the customer",
    "snoozed": "snoozed",
    "resolved": "resolved",
    "closed": "closed",
}


#: the priorities by name, lowest first: what /priority takes and menus offer
PRIORITIES = tuple(p.name.lower() for p in Priority)
#: how a priority above normal stands out on a card and a topic's name
PRIORITY_MARK = {"high": "❗", "urgent": "🔥"}


def priority_mark(card: ConversationCard) -> str:
    return PRIORITY_MARK.get(card.priority, "")


def labels_line(card: ConversationCard) -> str:
    """e.g. "🔥 urgent · #vip #billing"; empty for a normal conversation without tags."""
    parts = []
    if card.priority in PRIORITY_MARK:
        parts.append(f"{PRIORITY_MARK[card.priority]} {card.priority}")
    if card.tags:
        parts.append(" ".join(f"#{t}" for t in card.tags))
    return " · ".join(parts)


def history_lines(card: ConversationCard) -> list[str]:
    """The customer's earlier conversations, for the card: a count and the last few."""
    if not card.earlier_count:
        return []
    shown = len(card.earlier)
    head = f"Earlier conversations: {card.earlier_count}" + (
        f" (the last {shown}; /history lists all)" if card.earlier_count > shown else ""
    )
    return [head, *(f"  {line}" for line in card.earlier)]


def is_finished(card: ConversationCard) -> bool:
    return card.status in ("resolved", "closed")


def status_icon(card: ConversationCard) -> str:
    return STATUS_ICON.get(card.status, "•")


def status_line(card: ConversationCard) -> str:
    """e.g. "🟢 assigned · Anna" (plain text: adapters escape it for their markup)."""
    status = STATUS_TEXT.get(card.status, card.status)
    if card.assignee_name and card.status not in ("queued", "new"):
        status += f" · {card.assignee_name}"
    return f"{STATUS_ICON.get(card.status, '')} {status}".strip()


def file_line(name: str | None, kind: str, size: int | None) -> str:
    """A file named in text, where the file itself cannot follow."""
    label = name or kind
    if size:
        label += (
            f" ({size / 1024 / 1024:.1f} MB)"
            if size >= 1024 * 1024
            else f" ({size // 1024 or 1} KB)"
        )
    return f"📎 {label}"


def text_with_files(out: Outbound) -> str:
    """The text plus a line per file that cannot be sent as a file (its origin is
    unknown); the others are uploaded after the text. Not escaped yet."""
    lines = [file_line(a.name, a.kind, a.size) for a in out.attachments if not a.origin]
    return "\n".join([out.text, *lines] if out.text else lines)


def uploads(out: Outbound) -> tuple[Attachment, ...]:
    """The files to send as files: those whose origin can give their bytes."""
    return tuple(a for a in out.attachments if a.origin)


#: how much of a very long text is shown in the thread, its whole in a file below
PREVIEW_CHARS = 1500


def long_text_preview(text: str) -> str:
    """The start of a text too long to post in parts (a mail with its history),
    not cut mid-word, and a line that says the whole is in the file posted below:
    two messages rather than dozens against a group's or channel's limit."""
    start = text[:PREVIEW_CHARS]
    start = start.rsplit(" ", 1)[0] if " " in start else start
    return f"{start} …\n\n📄 {len(text):,} characters: all of it in the file below"


def long_text_file_name(out: Outbound) -> str:
    return f"message-{out.message_id or 'text'}.txt"
