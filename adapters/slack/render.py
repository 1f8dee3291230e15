"""The core's deliveries as Slack shows them: the Block Kit card and message texts.

Slack's mrkdwn needs only ``&``, ``<`` and ``>`` escaped
(https://docs.slack.dev/messaging/formatting-message-text#escaping), so a
customer's text can never ping a channel or forge a link.
"""

from __future__ import annotations

from typing import Any

from gateway.cards import PRIORITIES, history_lines, is_finished, labels_line, status_line
from gateway.config import OperatorConfig
from gateway.events import ConversationCard, Outbound

JSON = dict[str, Any]
#: a section block's text: https://docs.slack.dev/reference/block-kit/blocks/section-block
SECTION_LIMIT = 3000
#: a static select's options: https://docs.slack.dev/reference/block-kit/block-elements/select-menu-element
OPTIONS_LIMIT = 100


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def card_text(card: ConversationCard) -> str:
    """The card as plain text: notifications and clients without blocks show this."""
    return f"{card.customer_name} ({card.channel}): {status_line(card)} · #{card.conversation_id}"


def card_blocks(
    card: ConversationCard,
    operators: list[OperatorConfig],
    *,
    replies: list[tuple[str, str]] | None = None,
    tags: list[str] | None = None,
) -> list[JSON]:
    """The card: who, where, what state, and its buttons and menus (``replies``: the
    saved replies as (name, label); ``tags``: the tags to offer)."""
    who = f"*{escape(card.customer_name)}*"
    if card.customer_username:
        who += f" @{escape(card.customer_username)}"
    if card.channel == "slack" and card.customer_external_id:
        who += f" (<@{card.customer_external_id}>)"
    details = (
        f"{who}\nChannel: {escape(card.channel)} · Language: {escape(card.language or '?')}\n"
        f"Status: {escape(status_line(card))}"
    )
    if labels_line(card):
        details += f"\n{escape(labels_line(card))}"
    for line in history_lines(card):
        details += f"\n{escape(line)}"
    blocks: list[JSON] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": details[:SECTION_LIMIT]}}
    ]
    blocks.append(
        {"type": "actions", "block_id": "conversation", "elements": _actions(card, operators)}
    )
    if not is_finished(card):
        sorting = _sorting(card, replies or [], tags or [])
        blocks.append({"type": "actions", "block_id": "sorting", "elements": sorting})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Conversation #{card.conversation_id}. Reply in the thread to "
                    "answer; start with `note:` to keep it internal.",
                }
            ],
        }
    )
    return blocks


def _button(action: str, label: str, style: str | None = None) -> JSON:
    button: JSON = {
        "type": "button",
        "action_id": action,
        "text": {"type": "plain_text", "text": label, "emoji": True},
        "value": action,
    }
    if style:
        button["style"] = style
    return button


def _actions(card: ConversationCard, operators: list[OperatorConfig]) -> list[JSON]:
    if is_finished(card):
        return [_button("reopen", "↩️ Reopen")]
    elements = [_button("claim", "🙋 Claim", "primary"), _button("close", "✅ Close")]
    options = [
        {"text": {"type": "plain_text", "text": op.name[:75]}, "value": op.id}
        for op in operators
        if op.name != card.assignee_name
    ][:OPTIONS_LIMIT]
    if options:
        elements.append(
            {
                "type": "static_select",
                "action_id": "transfer",
                "placeholder": {"type": "plain_text", "text": "➡️ Transfer to…"},
                "options": options,
            }
        )
    elements.append(
        {
            "type": "static_select",
            "action_id": "snooze",
            "placeholder": {"type": "plain_text", "text": "💤 Snooze…"},
            "options": [
                {"text": {"type": "plain_text", "text": label}, "value": value}
                for value, label in SNOOZE_OPTIONS
            ],
        }
    )
    return elements


def _select(action: str, placeholder: str, options: list[tuple[str, str]]) -> JSON:
    return {
        "type": "static_select",
        "action_id": action,
        "placeholder": {"type": "plain_text", "text": placeholder},
        "options": [
            {"text": {"type": "plain_text", "text": label[:75]}, "value": value[:150]}
            for value, label in options[:OPTIONS_LIMIT]
        ],
    }


def _sorting(card: ConversationCard, replies: list[tuple[str, str]], tags: list[str]) -> list[JSON]:
    """The card's second row: a saved reply to send, the priority, a tag to add or
    remove (a tag the card has is offered for removal, as ``-tag``)."""
    elements = []
    if replies:
        elements.append(_select("reply", "📋 Saved reply…", replies))
    elements.append(
        _select(
            "priority",
            "Priority…",
            [(p, f"{'● ' if p == card.priority else ''}{p}") for p in PRIORITIES],
        )
    )
    offered = [(f"-{t}", f"✓ {t}") for t in card.tags] + [
        (t, t) for t in tags if t not in card.tags
    ]
    if offered:
        elements.append(_select("tag", "🏷 Tags…", offered))
    return elements


def command_blocks(text: str, choices: tuple[tuple[str, str], ...]) -> list[JSON]:
    """An answer to an operator with follow-up buttons: each a command, "reply:refund"
    pressed runs ``/reply refund``."""
    buttons = []
    for command, label in choices[:25]:
        name, _, args = command.partition(":")
        buttons.append(
            {
                "type": "button",
                "action_id": name,
                "text": {"type": "plain_text", "text": label[:75], "emoji": True},
                "value": args or name,
            }
        )
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_LIMIT]}},
        {"type": "actions", "block_id": "commands", "elements": buttons},
    ]


#: the card's snooze menu: /snooze arguments and how they read
SNOOZE_OPTIONS = (
    ("30m", "30 minutes"),
    ("1h", "1 hour"),
    ("2h", "2 hours"),
    ("4h", "4 hours"),
    ("1d", "1 day"),
    ("3d", "3 days"),
)


def mention_line(operator_ids: tuple[str, ...], operators: list[OperatorConfig]) -> str:
    """Operators named so that Slack notifies them (``<@U…>``); one without a Slack
    id is named in plain text."""
    known = {op.id: op for op in operators}
    return " ".join(
        f"<@{op.identity('slack')}>" if op.identity("slack") else escape(op.name)
        for op in (known.get(i) for i in operator_ids)
        if op is not None
    )


def thread_text(out: Outbound) -> tuple[str, str | None]:
    """A message in a conversation's thread, and the name it is posted under."""
    text = escape(out.text)
    if out.author_role == "customer":
        return text, out.author_name or "Customer"
    if out.author_role == "operator":
        return text, f"{out.author_name or 'Operator'} (operator)"
    if out.author_role == "saved":
        return f":clipboard: _Saved reply:_\n{text}", f"{out.author_name or 'Operator'} (operator)"
    if out.author_role == "note":
        return f":memo: _Internal note:_ {text}", f"{out.author_name or 'Operator'} (note)"
    if out.author_role == "system":
        return f":information_source: _{text}_", None
    return f":robot_face: _Automatic answer:_\n{text}", None


def edited(text: str) -> str:
    return f"{text} _(edited)_"


def deleted(out: Outbound) -> str:
    return f"~{escape(out.text)}~ _(deleted by the customer)_"


#: action_id prefix of a customer's choice button: "pick-<reply>"
PICK = "pick-"


def choice_blocks(text: str, choices: tuple[tuple[str, str], ...]) -> list[JSON]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": escape(text)[:SECTION_LIMIT]}},
        {
            "type": "actions",
            "block_id": "choices",
            "elements": [
                {
                    "type": "button",
                    "action_id": f"{PICK}{reply}",
                    "text": {"type": "plain_text", "text": label[:75], "emoji": True},
                    "value": reply,
                }
                for reply, label in choices[:25]
            ],
        },
    ]
