"""The three ways out of a held reply (``gateway.collisions``), pressed by its writer:
send it anyway (as help in a colleague's conversation), take the conversation over
and send it, or cancel it. Buttons only: these have no place in the command menu."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

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


HeldHandler = Callable[[InConversation, Message], Awaitable[ActionResult]]


def on_held(name: str) -> Callable[[HeldHandler], HeldHandler]:
    """Register a button's action: it runs only on a held reply its presser wrote."""

    def register(handler: HeldHandler) -> HeldHandler:
        async def run(ctx: InConversation) -> ActionResult:
            message = await _held(ctx)
            if isinstance(message, ActionResult):
                return message
            return await handler(ctx, message)

        router.action(name)(run)
        return handler

    return register


@on_held("send")
async def send_anyway(ctx: InConversation, message: Message) -> ActionResult:
    await _release(ctx, message)
    return ctx.done("Sent.")


@on_held("takeover")
async def take_over(ctx: InConversation, message: Message) -> ActionResult:
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


@on_held("discard")
async def discard(ctx: InConversation, message: Message) -> ActionResult:
    message.deleted_at = utcnow()
    ctx.tx.add(message)
    return ctx.done("Cancelled: the customer never saw it.")
