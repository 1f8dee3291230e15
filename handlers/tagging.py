"""Tags and priority: how operators sort conversations, for the queue and reports.

Tags are short free words (``vip``, ``billing``), stored as typed but lower-cased
and without a leading ``#``, so ``#VIP`` and ``vip`` are one tag in a report. The
priority orders the queue: the most urgent waiting conversation is assigned first,
the oldest first among equals.
"""

from __future__ import annotations

from gateway.actions import ActionRouter, InConversation
from gateway.config.workbench import TAG_LIMIT, normal_tag
from gateway.events import ActionResult
from storage import Priority

router = ActionRouter()

#: tags on one conversation: enough to sort by, few enough to read on a card
TAGS_PER_CONVERSATION = 10
PRIORITY_NAMES = {p.name.lower(): p for p in Priority}


def priority_name(value: int) -> str:
    return Priority(value).name.lower() if value in Priority._value2member_map_ else str(value)


def _words(ctx: InConversation) -> tuple[list[str], list[str]]:
    """The tags in the command's arguments, and what was not a tag."""
    good: list[str] = []
    bad: list[str] = []
    for word in ctx.args.replace(",", " ").split():
        tag = normal_tag(word)
        (good if tag else bad).append(tag or word[:40])
    return list(dict.fromkeys(good)), bad


def _listed(tags: list[str]) -> str:
    return ", ".join(f"#{t}" for t in tags) if tags else "none"


async def _relabelled(ctx: InConversation, note: str) -> None:
    """After a change of tags or priority: the card shows it, so the note is kept in
    the history and not posted (a Telegram group takes 20 messages a minute)."""
    ctx.tx.touch(ctx.conversation)
    await ctx.relay.header(ctx.tx, ctx.conversation)
    await ctx.relay.system(ctx.tx, ctx.conversation, note, posted=False)


@router.action("tag", help="label this conversation: /tag vip billing")
async def tag(ctx: InConversation) -> ActionResult:
    conversation = ctx.conversation
    wanted, bad = _words(ctx)
    current = list(conversation.tags or ())
    if bad:
        return ctx.refuse(
            f"Not a tag: {', '.join(bad)}. A tag is one word of letters, digits, - or _ "
            f"(at most {TAG_LIMIT} characters)."
        )
    if not wanted:
        return ctx.refuse(f"Which tags? /tag vip billing. Tags now: {_listed(current)}.")
    added = [t for t in wanted if t not in current]
    if len(current) + len(added) > TAGS_PER_CONVERSATION:
        return ctx.refuse(f"At most {TAGS_PER_CONVERSATION} tags; /untag one first.")
    if not added:
        return ctx.refuse(f"Already tagged: {_listed(current)}.")
    conversation.tags = [*current, *added]
    await _relabelled(ctx, f"🏷 {ctx.operator.name} tagged {_listed(added)}.")
    return ctx.done(f"Tags: {_listed(conversation.tags)}.")


@router.action("untag", help="remove a label: /untag vip")
async def untag(ctx: InConversation) -> ActionResult:
    conversation = ctx.conversation
    wanted, _ = _words(ctx)
    current = list(conversation.tags or ())
    if not wanted:
        return ctx.refuse(f"Which tag? /untag vip. Tags now: {_listed(current)}.")
    removed = [t for t in wanted if t in current]
    if not removed:
        return ctx.refuse(f"Not tagged {_listed(wanted)}. Tags now: {_listed(current)}.")
    conversation.tags = [t for t in current if t not in removed]
    await _relabelled(ctx, f"🏷 {ctx.operator.name} removed {_listed(removed)}.")
    return ctx.done(f"Tags: {_listed(conversation.tags)}.")


@router.action("priority", help="how urgent this is: /priority high (normal, high, urgent)")
async def priority(ctx: InConversation) -> ActionResult:
    conversation = ctx.conversation
    names = ", ".join(PRIORITY_NAMES)
    wanted = PRIORITY_NAMES.get(ctx.args.strip().lower())
    if wanted is None:
        now = priority_name(conversation.priority)
        return ctx.refuse(f"Which priority? /priority high (one of {names}). Now: {now}.")
    if conversation.priority == wanted:
        return ctx.refuse(f"The priority is already {wanted.name.lower()}.")
    conversation.priority = int(wanted)
    await _relabelled(ctx, f"{ctx.operator.name} set the priority to {wanted.name.lower()}.")
    if wanted > Priority.NORMAL:
        # more urgent than what waits: it may be the one a free operator takes now
        await ctx.dispatcher.drain_queue(ctx.tx)
    return ctx.done(f"Priority: {wanted.name.lower()}.")
