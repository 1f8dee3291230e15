"""Operator actions, one small function each.

Adapters turn a Telegram command or a Slack button into an ``OperatorCommand``; the
core finds the conversation and the operator and calls the function registered
here under the command's name.
"""

from __future__ import annotations

import re
from datetime import timedelta

from gateway.actions import ActionContext, ActionRouter, InConversation
from gateway.events import ActionResult
from gateway.hours import describe
from gateway.lifecycle import move
from storage import ACTIVE_STATUSES, FINISHED_STATUSES, ConversationStatus, Direction, Message
from storage.models import Presence
from storage.types import utcnow

router = ActionRouter()

_DURATION_RE = re.compile(r"(\d+)\s*([dhm])")
#: waiting conversations /status names, oldest first
STATUS_QUEUE_LINES = 5
#: the longest snooze: a conversation forgotten for longer is not snoozed but lost
MAX_SNOOZE = timedelta(days=30)


def parse_duration(text: str) -> timedelta | None:
    """``2h``, ``30m``, ``1d``, ``1h30m``, ``90 m`` -> a duration; None if not one."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or _DURATION_RE.sub("", compact):
        return None
    units = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
    try:
        total = sum(
            (int(n) * units[u] for n, u in _DURATION_RE.findall(compact)), start=timedelta(0)
        )
    except OverflowError:
        return timedelta.max  # longer than any calendar: too long for whoever asks
    return total or None


@router.action("claim", help="take this conversation")
async def claim(ctx: InConversation) -> ActionResult:
    conversation = ctx.conversation
    if conversation.status in FINISHED_STATUSES:
        return ctx.refuse("This conversation is closed; /reopen it first.")
    if conversation.assignee_id == ctx.operator.id:
        return ctx.refuse("This conversation is already yours.")
    if conversation.assignee_id is not None and conversation.status in ACTIVE_STATUSES:
        owner = ctx.config.operator(conversation.assignee_id)
        return ctx.refuse(
            f"{owner.name if owner else conversation.assignee_id} has this conversation; "
            "ask them to /transfer it to you."
        )
    free = await ctx.dispatcher.capacity_left(ctx.tx, ctx.operator)
    if free <= 0:
        limit = ctx.config.core.max_chats(ctx.operator)
        return ctx.refuse(f"You already have {limit} of {limit} conversations; close one first.")
    await ctx.dispatcher.assign(
        ctx.tx,
        conversation,
        ctx.operator,
        announce=True,
        note=f"Claimed by {ctx.operator.name}.",
    )
    return ctx.done("The conversation is yours.")


@router.action("close", help="resolve this conversation", aliases=("resolve",))
async def close(ctx: InConversation) -> ActionResult:
    conversation = ctx.conversation
    if conversation.status in FINISHED_STATUSES:
        return ctx.refuse("This conversation is already closed.")
    await ctx.dispatcher.resolve(ctx.tx, conversation, by=ctx.operator.name, operator=ctx.operator)
    return ctx.done("Closed.")


@router.action("reopen", help="bring a closed conversation back, assigned to you")
async def reopen(ctx: InConversation) -> ActionResult:
    conversation = ctx.conversation
    if conversation.status not in FINISHED_STATUSES:
        return ctx.refuse("This conversation is still open.")
    await ctx.dispatcher.reopen(ctx.tx, conversation, ctx.operator)
    return ctx.done("Reopened and assigned to you.")


@router.action("transfer", help="hand this conversation to a colleague: /transfer <operator>")
async def transfer(ctx: InConversation) -> ActionResult:
    conversation = ctx.conversation
    wanted = ctx.args.strip().lstrip("@").lower()
    if not wanted:
        names = ", ".join(op.id for op in ctx.config.operators if op.id != ctx.operator.id)
        return ctx.refuse(f"Whom to? /transfer <operator>, one of: {names}.")
    target = next(
        (op for op in ctx.config.operators if wanted in (op.id.lower(), op.name.lower())), None
    )
    if target is None:
        return ctx.refuse(f"No operator called {ctx.args.strip()[:40]!r}.")
    if conversation.status in FINISHED_STATUSES:
        return ctx.refuse("This conversation is closed; /reopen it first.")
    if target.id == conversation.assignee_id:
        return ctx.refuse(f"{target.name} already has this conversation.")
    candidates = {c.operator.id: c for c in await ctx.dispatcher.candidates(ctx.tx)}
    candidate = candidates[target.id]
    if candidate.presence != Presence.ONLINE:
        return ctx.refuse(f"{target.name} is {candidate.presence}; pick someone online.")
    if not candidate.has_capacity:
        return ctx.refuse(
            f"{target.name} already has {candidate.load} of {candidate.max_chats} conversations."
        )
    await ctx.dispatcher.assign(
        ctx.tx,
        conversation,
        target,
        announce=True,
        text="transferred",
        note=f"Transferred by {ctx.operator.name} to {target.name}.",
    )
    await ctx.dispatcher.drain_queue(ctx.tx)
    return ctx.done(f"Transferred to {target.name}.")


@router.action("note", help="an internal note the customer never sees: /note <text>")
async def note(ctx: InConversation) -> ActionResult:
    conversation = ctx.conversation
    assert conversation.id is not None
    text = ctx.args.strip()
    if not text:
        return ctx.refuse("Write the note after the command: /note <text>.")
    message = Message(
        conversation_id=conversation.id,
        direction=Direction.NOTE,
        author_id=ctx.operator.id,
        author_name=ctx.operator.name,
        text=text,
    )
    await ctx.tx.add_message(message)
    await ctx.relay.mirror(ctx.tx, conversation, message, role="note", skip=ctx.channel)
    return ctx.done("Note saved; the customer does not see it.")


@router.action("snooze", help="put this conversation aside: /snooze 2h (30m, 1d, 1h30m)")
async def snooze(ctx: InConversation) -> ActionResult:
    conversation = ctx.conversation
    if conversation.status in FINISHED_STATUSES:
        return ctx.refuse("This conversation is closed.")
    if conversation.assignee_id is None:
        return ctx.refuse("Nobody has this conversation yet; claim it before snoozing it.")
    wanted = parse_duration(ctx.args)
    if wanted is None:
        return ctx.refuse("For how long? /snooze 2h (or 30m, 1d, 1h30m).")
    if wanted > MAX_SNOOZE:
        return ctx.refuse("At most 30 days: a conversation put aside longer is forgotten.")
    until = utcnow() + wanted
    move(conversation, ConversationStatus.SNOOZED)
    conversation.snoozed_until = until
    ctx.tx.touch(conversation)
    schedule = ctx.config.core.schedule
    when = describe(until, schedule.zone, ctx.config.gateway.default_language)
    await ctx.relay.system(
        ctx.tx,
        conversation,
        f"💤 Snoozed by {ctx.operator.name} until {when}; a message from the customer "
        "wakes it earlier.",
    )
    await ctx.relay.header(ctx.tx, conversation)
    return ctx.done(f"Snoozed until {when}.")


@router.team_action("status", help="the queue and who is online")
async def status(ctx: ActionContext) -> ActionResult:
    queue = await ctx.tx.queue()
    team = await ctx.dispatcher.candidates(ctx.tx)
    now = utcnow()
    if queue and queue[0].queued_at is not None:
        waited = int((now - queue[0].queued_at).total_seconds() // 60)
        head = f"{len(queue)} waiting, the oldest for {waited} min"
    else:
        head = "nobody waiting"
    lines = [f"Queue: {head}."]
    for conversation in queue[:STATUS_QUEUE_LINES]:
        customer = await ctx.tx.customer(conversation.customer_id)
        since = conversation.queued_at or conversation.created_at
        minutes = int((now - since).total_seconds() // 60)
        lines.append(
            f"  #{conversation.id} {customer.display_name} ({conversation.channel}), {minutes} min"
        )
    if len(queue) > STATUS_QUEUE_LINES:
        lines.append(f"  … and {len(queue) - STATUS_QUEUE_LINES} more")
    schedule = ctx.config.core.schedule
    if not schedule.is_open(now):
        when = schedule.opening_words(now, ctx.config.gateway.default_language)
        lines.append(f"The desk is closed; it opens {when}.")
    for presence in (Presence.ONLINE, Presence.AWAY, Presence.OFFLINE):
        people = [
            f"{c.operator.name} {c.load}/{c.max_chats}" + ("" if c.on_shift else " (off shift)")
            for c in team
            if c.presence == presence
        ]
        if people:
            lines.append(f"{presence.capitalize()}: {', '.join(people)}.")
    return ctx.lookup("\n".join(lines))


async def _presence(ctx: ActionContext, presence: Presence) -> ActionResult:
    taken = await ctx.dispatcher.set_presence(ctx.tx, ctx.operator, presence)
    extra = f" {taken} waiting conversation(s) assigned." if taken else ""
    return ctx.done(f"You are {presence}.{extra}")


@router.team_action("online", help="take new conversations")
async def online(ctx: ActionContext) -> ActionResult:
    return await _presence(ctx, Presence.ONLINE)


@router.team_action("away", help="keep your chats, take no new ones")
async def away(ctx: ActionContext) -> ActionResult:
    return await _presence(ctx, Presence.AWAY)


@router.team_action("offline", help="log off")
async def offline(ctx: ActionContext) -> ActionResult:
    return await _presence(ctx, Presence.OFFLINE)


__all__ = ["router"]
