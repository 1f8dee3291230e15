"""Saved replies (canned responses): texts admins keep in config.toml that an operator
sends with one command, in the customer's language, with names filled in.

``/reply refund`` (or ``/r refund``) in a conversation's topic or thread sends it as
the operator's own reply would go, and the workspace shows it marked as a saved
reply. ``/r`` alone, or an unknown name, lists them with a button each: a typo
never reaches the customer.
"""

from __future__ import annotations

from gateway.actions import ActionRouter, InConversation
from gateway.collisions import colliding, held
from gateway.config.workbench import SavedReply
from gateway.events import ActionResult
from gateway.texts import pick_language
from storage import Direction, Message, build

router = ActionRouter()

#: saved replies listed with a button each; more are named in the text
BUTTONS = 20


def fill(reply: SavedReply, ctx: InConversation, customer: str) -> str:
    """The reply's text in the conversation's language, its placeholders filled."""
    text = reply.text
    if isinstance(text, dict):
        text = pick_language(text, ctx.conversation.language, ctx.config.gateway.default_language)
    return text.format(
        customer=customer, operator=ctx.operator.name, conversation=ctx.conversation.id
    )


def listing(ctx: InConversation, head: str, *, ok: bool = True) -> ActionResult:
    replies = ctx.config.core.replies
    lines = [head, *(f"• {r.name}: {r.label}" for r in replies)]
    lines.append("Send one with /r <name>, or tap it.")
    return ctx.lookup(
        "\n".join(lines), tuple((f"reply:{r.name}", r.label) for r in replies[:BUTTONS]), ok=ok
    )


@router.action("reply", help="send a saved reply: /r <name> (/r lists them)", aliases=("r",))
async def reply(ctx: InConversation) -> ActionResult:
    if not ctx.config.core.replies:
        return ctx.refuse(
            "There are no saved replies yet: an admin adds them as [[replies]] in config.toml."
        )
    name = ctx.args.strip()
    if not name:
        return listing(ctx, "Saved replies:")
    saved = ctx.config.core.saved_reply(name)
    if saved is None:
        return listing(ctx, f"No saved reply is called “{name[:40]}”. Saved replies:", ok=False)
    conversation = ctx.conversation
    customer = await ctx.tx.customer(conversation.customer_id)
    message = build(
        Message,
        conversation_id=conversation.id,
        direction=Direction.OUT,
        author_id=ctx.operator.id,
        author_name=ctx.operator.name,
        text=fill(saved, ctx, customer.display_name),
    )
    collision = await colliding(ctx.tx, ctx.config, conversation, ctx.operator)
    if collision is not None:
        message.direction = Direction.HELD
        await ctx.tx.add_message(message)
        assert message.id is not None and conversation.id is not None
        return held(message.id, conversation.id, *collision)
    await ctx.answering.send(ctx.tx, conversation, ctx.operator, message, role="saved")
    return ctx.done(f"Sent the saved reply “{saved.name}”.")
