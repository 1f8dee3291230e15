"""A Telegram message as text, and whether Telegram lets a bot copy it.

Operators read a customer's message in the topic as a copy where Telegram allows
one (formatting and media kept). Telegram refuses to copy an invoice, a game, a
story, a giveaway and its winners, paid media, a checklist, a quiz poll and any
service message: for those the topic gets this text instead, with what the kind
has to show (title, amount, link, items), never an empty or failed copy.
"""

from __future__ import annotations

from typing import Any

from aiogram.types import Message

MEDIA = ("photo", "document", "video", "animation", "audio", "voice", "video_note", "sticker")
#: what copyMessage can carry (https://core.telegram.org/bots/api#copymessage)
COPYABLE = (*MEDIA, "text", "location", "venue", "contact", "poll", "dice")


def copyable(message: Message) -> bool:
    """Whether the bot may relay the message as a copy (else it is relayed as text):
    Telegram lets it, and nothing of it would be lost (a forward's origin would)."""
    if message.forward_origin is not None:
        return False
    if message.poll is not None:
        # a quiz's answer is not known to the bot: Telegram will not copy it
        return message.poll.type != "quiz"
    return any(getattr(message, kind, None) for kind in COPYABLE)


def describe(message: Message) -> str:
    """The message as text: its own text, or a readable stand-in for what has none;
    a forward says where from."""
    text = _content(message)
    origin = forwarded_from(message)
    return f"↪ Forwarded from {origin}\n{text}".strip() if origin else text


def _content(message: Message) -> str:
    special = _uncopyable(message)
    if special is not None:
        caption = message.caption or ""
        return f"{special}\n{caption}".strip()
    if message.text:
        return message.text
    if message.caption:
        return message.caption
    if message.location and not message.venue:
        loc = message.location
        return f"📍 Location: {loc.latitude:.5f}, {loc.longitude:.5f}"
    if message.venue:
        v = message.venue
        return f"📍 {v.title}, {v.address} ({v.location.latitude:.5f}, {v.location.longitude:.5f})"
    if message.contact:
        c = message.contact
        name = " ".join(filter(None, [c.first_name, c.last_name]))
        return f"📇 Contact: {name}, {c.phone_number}"
    if message.poll:
        options = " / ".join(o.text for o in message.poll.options)
        quiz = "Quiz" if message.poll.type == "quiz" else "Poll"
        return f"📊 {quiz}: {message.poll.question} ({options})"
    if message.dice:
        return f"{message.dice.emoji} rolled {message.dice.value}"
    if message.sticker:
        return f"[sticker {message.sticker.emoji or ''}]".replace(" ]", "]")
    if any(getattr(message, kind, None) for kind in MEDIA):
        return ""
    kind = getattr(message.content_type, "value", message.content_type)
    return f"[{kind} message: Telegram does not let bots copy this kind; ask the customer]"


def forwarded_from(message: Message) -> str | None:
    """Who a forwarded message came from, as operators should read it; None when the
    message is not a forward. A copy would lose Telegram's "Forwarded from" line."""
    origin: Any = message.forward_origin
    if origin is None:
        return None
    kind = getattr(origin, "type", "")
    if kind == "user":
        return str(origin.sender_user.full_name)
    if kind == "hidden_user":
        return str(origin.sender_user_name)
    if kind == "chat":
        return str(origin.sender_chat.title or origin.sender_chat.id)
    if kind == "channel":
        chat = origin.chat
        link = f" https://t.me/{chat.username}/{origin.message_id}" if chat.username else ""
        return f"{chat.title or chat.id}{link}"
    return "someone"


def _amount(total: int, currency: str) -> str:
    if currency == "XTR":  # Telegram Stars: whole units
        return f"{total} ⭐"
    return f"{total / 100:.2f} {currency}"


def _uncopyable(message: Message) -> str | None:
    """A description of a kind Telegram will not copy, or None for the others."""
    invoice = message.invoice
    if invoice is not None:
        amount = _amount(invoice.total_amount, invoice.currency)
        return f"🧾 Invoice: {invoice.title} ({amount})\n{invoice.description}".strip()
    payment = message.successful_payment
    if payment is not None:
        amount = _amount(payment.total_amount, payment.currency)
        return f"💳 Payment received: {amount} for {payment.invoice_payload}"
    game = message.game
    if game is not None:
        return f"🎮 Game: {game.title}\n{game.description}".strip()
    story = message.story
    if story is not None:
        return f"📖 Story {story.id}{_story_link(story.chat, story.id)}"
    giveaway = message.giveaway
    if giveaway is not None:
        prize = giveaway.prize_description or (
            f"{giveaway.prize_star_count} ⭐"
            if giveaway.prize_star_count
            else f"Telegram Premium for {giveaway.premium_subscription_month_count or '?'} months"
        )
        return (
            f"🎁 Giveaway: {giveaway.winner_count} winner(s), {prize}, "
            f"until {giveaway.winners_selection_date:%Y-%m-%d %H:%M} UTC"
        )
    winners = message.giveaway_winners
    if winners is not None:
        return f"🏆 Giveaway winners: {winners.winner_count} winner(s)"
    paid = message.paid_media
    if paid is not None:
        return f"💰 Paid media: {len(paid.paid_media)} item(s) for {paid.star_count} ⭐"
    checklist: Any = getattr(message, "checklist", None)
    if checklist is not None:
        tasks = "\n".join(f"• {task.text}" for task in checklist.tasks)
        return f"☑ Checklist: {checklist.title}\n{tasks}".strip()
    return None


def _story_link(chat: Any, story_id: int) -> str:
    username = getattr(chat, "username", None)
    return f": https://t.me/{username}/s/{story_id}" if username else ""
