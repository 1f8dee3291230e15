"""The three ways out of a held reply (``gateway.collisions``), pressed by its writer:
send it anyway (as help in a colleague's conversation), take the conversation over
and send it, or cancel it. Buttons only: these have no place in the command menu."""

from __future__ import annotations

from gateway.actions import ActionRouter, InConversation
from gateway.events import ActionResult
from storage import Direction, Message
from storage.types import utcnow

router = ActionRouter()


async def _held(ctx: InConversation) -> Message | ActionResult:
    """The held reply the button names: in this conversation, by whoever pressed."""
    number = ctx.args.strip()
    message = await ctx.tx.message(int(number)) if number.isdigit() else None
    if (
        message is None
        or message.conversation_id != ctx.conversation.id
        or message.author_id != ctx.operator.id
    ):
        return ctx.refuse("Only whoever wrote a held reply can send or cancel it.")
    if message.direction != Direction.HELD or message.deleted_at is not None:
        return ctx.refuse("That reply was already sent or cancelled.")
    return message


async def _release(ctx: InConversation, message: Message) -> None:
    message.direction = Direction.OUT
    await ctx.answering.send(
        ctx.tx, ctx.conversation, ctx.operator, message, written_in=ctx.channel
    )


@router.action("send")
async def send_anyway(ctx: InConversation) -> ActionResult:
    message = await _held(ctx)
    if isinstance(message, ActionResult):
        return message
    await _release(ctx, message)
    return ctx.done("Sent.")


@router.action("takeover")
async def take_over(ctx: InConversation) -> ActionResult:
    message = await _held(ctx)
    if isinstance(message, ActionResult):
        return message
    owner = ctx.config.operator(ctx.conversation.assignee_id)
    if ctx.conversation.assignee_id not in (None, ctx.operator.id):
        await ctx.dispatcher.assign(
            ctx.tx,
            ctx.conversation,
            ctx.operator,
            announce=True,
            text="transferred",
            note=f"{ctx.operator.name} took over from {owner.name if owner else 'a colleague'}.",
        )
    await _release(ctx, message)
    return ctx.done("The conversation is yours; your reply was sent.")


@router.action("discard")
async def discard(ctx: InConversation) -> ActionResult:
    message = await _held(ctx)
    if isinstance(message, ActionResult):
        return message
    message.deleted_at = utcnow()
    ctx.tx.add(message)
    return ctx.done("Cancelled: the customer never saw it.")
