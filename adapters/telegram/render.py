"""The core's deliveries as Telegram shows them: topic names, header cards, texts.

HTML parse mode throughout (https://core.telegram.org/bots/api#html-style): only
``<``, ``>`` and ``&`` need escaping, so a customer's text can never break markup.
"""

from __future__ import annotations

from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from gateway.cards import (
    history_lines,
    is_finished,
    labels_line,
    priority_mark,
    status_icon,
    status_line,
)
from gateway.config import OperatorConfig
from gateway.events import ConversationCard, Outbound

#: https://core.telegram.org/bots/api#createforumtopic
TOPIC_NAME_LIMIT = 128


def topic_name(card: ConversationCard) -> str:
    name = f"{status_icon(card)}{priority_mark(card)} {card.customer_name} #{card.conversation_id}"
    if card.tags:
        name += " " + " ".join(f"#{t}" for t in card.tags)
    if len(name) > TOPIC_NAME_LIMIT:
        name = name[: TOPIC_NAME_LIMIT - 1] + "…"
    return name


def header_text(card: ConversationCard) -> str:
    name = escape(card.customer_name)
    if card.channel == "telegram" and card.customer_external_id:
        name = f'<a href="tg://user?id={escape(card.customer_external_id)}">{name}</a>'
    lines = [
        f"<b>{name}</b>" + (f" @{escape(card.customer_username)}" if card.customer_username else "")
    ]
    lines.append(f"Channel: {escape(card.channel)} · Language: {escape(card.language or '?')}")
    lines.append(f"Status: {escape(status_line(card))}")
    if labels_line(card):
        lines.append(escape(labels_line(card)))
    lines.extend(escape(line) for line in history_lines(card))
    lines.append(
        f"<i>Conversation #{card.conversation_id}. Reply here to answer; "
        "/note keeps a note internal.</i>"
    )
    return "\n".join(lines)


def header_buttons(card: ConversationCard) -> InlineKeyboardMarkup:
    """The card's buttons: one of two keyboards, built once (a markup's pydantic
    models cost more to build than the rest of the card's call)."""
    return _FINISHED_BUTTONS if is_finished(card) else _OPEN_BUTTONS


_OPEN_BUTTONS = InlineKeyboardMarkup(
    inline_keyboard=[
        [
            InlineKeyboardButton(text="🙋 Claim", callback_data="claim"),
            InlineKeyboardButton(text="✅ Close", callback_data="close"),
            InlineKeyboardButton(text="➡️ Transfer", callback_data="transfer"),
        ]
    ]
)
_FINISHED_BUTTONS = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="↩️ Reopen", callback_data="reopen")]]
)


#: callback data of a customer's choice: "pick:<reply>" (Telegram allows 64 bytes)
PICK = "pick:"


def choice_buttons(choices: tuple[tuple[str, str], ...]) -> InlineKeyboardMarkup | None:
    if not choices:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=label, callback_data=(PICK + reply)[:64])]
            for reply, label in choices
        ]
    )


def command_buttons(choices: tuple[tuple[str, str], ...]) -> InlineKeyboardMarkup | None:
    """Follow-up commands under an answer to an operator: "reply:refund" pressed
    runs ``/reply refund`` in the same topic. Two to a row; callback data is 64
    bytes at most, so a longer command is left out rather than cut."""
    buttons = [
        InlineKeyboardButton(text=label[:60], callback_data=command)
        for command, label in choices
        if len(command.encode()) <= 64
    ]
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    )


def transfer_buttons(operators: list[OperatorConfig]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=f"➡️ {op.name}", callback_data=f"transfer:{op.id}")]
            for op in operators
        ]
    )


def workspace_text(out: Outbound) -> str:
    """A message as operators see it in the topic."""
    text = escape(out.text)
    author = escape(out.author_name or "")
    if out.author_role == "system":
        return f"ℹ️ <i>{text}</i>"
    if out.author_role == "operator":
        return f"<b>{author}</b> (from another workspace):\n{text}"
    if out.author_role == "saved":
        return f"📋 <b>{author}</b> sent a saved reply:\n{text}"
    if out.author_role == "bot":
        return f"🤖 <i>Automatic answer:</i>\n{text}"
    return f"<b>{author}</b>:\n{text}" if author else text


def mention_line(operator_ids: tuple[str, ...], operators: list[OperatorConfig]) -> str:
    """Operators named so that Telegram notifies them (a text mention by user id);
    one without a Telegram id is named in plain text."""
    known = {op.id: op for op in operators}
    parts = []
    for operator_id in operator_ids:
        op = known.get(operator_id)
        if op is None:
            continue
        telegram_id = op.identity("telegram")
        if telegram_id is not None:
            parts.append(f'<a href="tg://user?id={telegram_id}">{escape(op.name)}</a>')
        else:
            parts.append(escape(op.name))
    return " ".join(parts)


def note_text(out: Outbound) -> str:
    return f"📝 <b>{escape(out.author_name or '')}</b> (note):\n{escape(out.text)}"


def customer_text(out: Outbound) -> str:
    """A message as the customer sees it: an operator's carries their name."""
    text = escape(out.text)
    if out.author_role == "operator" and out.author_name:
        return f"<b>{escape(out.author_name)}</b>\n{text}"
    return text


def deleted_text(out: Outbound) -> str:
    """A customer's relayed message after they deleted it: kept, struck through."""
    return f"<s>{escape(out.text)}</s>\n<i>(deleted by the customer)</i>"


def edited_text(out: Outbound) -> str:
    """A relayed message after its author edited it."""
    if out.author_role == "customer":
        return f"{escape(out.text)}\n<i>(edited)</i>"
    return workspace_text(out) + "\n<i>(edited)</i>"
