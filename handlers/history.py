"""``/history``: the customer's earlier conversations, from inside the current one,
on every channel they wrote from (the card shows the last few)."""

from __future__ import annotations

from gateway.actions import ActionRouter, InConversation
from gateway.events import ActionResult
from gateway.relay import earlier_line

router = ActionRouter()

#: conversations /history lists, newest first
HISTORY_LINES = 20


@router.action("history", help="the customer's earlier conversations")
async def history(ctx: InConversation) -> ActionResult:
    conversation = ctx.conversation
    assert conversation.id is not None
    earlier = (await ctx.tx.earlier_conversations([conversation.id], most=HISTORY_LINES))[
        conversation.id
    ]
    customer = await ctx.tx.customer(conversation.customer_id)
    if not earlier:
        return ctx.lookup(f"This is {customer.display_name}'s first conversation.")
    zone = ctx.config.core.schedule.zone
    total = earlier[0].total
    lines = [f"{customer.display_name}: {total} earlier conversation(s), newest first:"]
    for e in earlier:
        thread = await ctx.tx.thread(e.conversation_id, ctx.channel)
        link = ctx.relay.desk.links(ctx.channel, thread.thread_ref) if thread else None
        lines.append(f"• {earlier_line(e, zone)}" + (f" {link}" if link else ""))
    if total > len(earlier):
        lines.append(f"… and {total - len(earlier)} more: gateway history --customer {customer.id}")
    return ctx.lookup("\n".join(lines))
