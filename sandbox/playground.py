"""People in the sandboxes: customers and operators a person at a terminal plays.

Used by `gateway demo` (scripted, and `--interactive`) and by `gateway sandbox`
(the sandboxes on their own, for trying a config). ``Watcher`` prints every new
message in every place as the person there sees it; ``Console`` turns typed lines
into what customers and operators do.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import shlex
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, TextIO

from sandbox.mail import MailSandbox, body_of
from sandbox.slack import SlackSandbox
from sandbox.telegram import TelegramSandbox

JSON = dict[str, Any]


def plain(text: str) -> str:
    """Telegram HTML and Slack mrkdwn as a terminal shows them, on one line."""
    text = re.sub(r"<a href=\"tg://user\?id=\d+\">([^<]*)</a>", r"\1", text)
    text = re.sub(r"<@(U[A-Z0-9]+)>", r"@\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    return " / ".join(line.strip() for line in html.unescape(text).splitlines() if line.strip())


@dataclass
class Playground:
    """The sandboxes, the operators' group and channel, and the people in them."""

    telegram: TelegramSandbox
    slack: SlackSandbox
    mail: MailSandbox
    support_address: str
    forum: JSON = field(default_factory=dict)
    channel: JSON = field(default_factory=dict)
    #: where the gateway takes customers' mail (its SMTP listener); 0 if unknown yet
    gateway_mail_port: int = 0
    operators_tg: dict[str, JSON] = field(default_factory=dict)
    operators_slack: dict[str, JSON] = field(default_factory=dict)
    customers_tg: dict[str, JSON] = field(default_factory=dict)
    customers_slack: dict[str, JSON] = field(default_factory=dict)

    def setup(self, operators: list[tuple[str, str, int | None, str | None]]) -> None:
        """The group, the channel, and each operator (id, name, telegram id, slack id)
        with the ids the config gives them."""
        self.forum = self.telegram.add_forum("Support desk")
        for op_id, name, telegram_id, _ in operators:
            self.operators_tg[op_id] = self.telegram.add_user(name, user_id=telegram_id)
        for op_id, name, _, slack_id in operators:
            self.operators_slack[op_id] = self.slack.add_user(name, user_id=slack_id)
        self.channel = self.slack.add_channel(
            "support-desk", members=list(self.operators_slack.values())
        )

    def channel_sections(
        self,
        *,
        listen_port: int,
        spool_dir: str | os.PathLike[str],
        slack_ping_seconds: float | None = None,
        group_messages_per_minute: int | None = None,
    ) -> str:
        """The [telegram], [slack] and [email] sections of a config pointed at these
        sandboxes: customers' mail reaches the gateway at ``listen_port``. Set
        ``group_messages_per_minute`` where the sandbox's limits are off, so the
        gateway does not keep to a limit nobody enforces."""
        telegram, slack = self.telegram, self.slack
        lines = [
            "[telegram]",
            f'token = "{telegram.token}"',
            f'api_base = "{telegram.api_base}"',
            f"workspace_chat_id = {self.forum['id']}",
            "poll_timeout_seconds = 1",
        ]
        if group_messages_per_minute is not None:
            lines.append(f"group_messages_per_minute = {group_messages_per_minute}")
        lines += [
            "",
            "[slack]",
            f'bot_token = "{slack.bot_token}"',
            f'app_token = "{slack.app_token}"',
            f'api_base = "{slack.api_base}"',
            f'workspace_channel = "{self.channel["id"]}"',
        ]
        if slack_ping_seconds is not None:
            lines.append(f"ping_interval_seconds = {slack_ping_seconds:g}")
        lines += [
            "",
            "[email]",
            f'address = "{self.support_address}"',
            'inbound = "smtp"',
            f"listen_port = {listen_port}",
            f'spool_dir = "{spool_dir}"',
            'smtp_host = "127.0.0.1"',
            f"smtp_port = {self.mail.port}",
            'smtp_security = "none"',
            "",
        ]
        return "\n".join(lines)

    # -- customers ----------------------------------------------------------------------

    def customer_tg(self, name: str, language: str = "en") -> JSON:
        key = name.lower()
        if key not in self.customers_tg:
            self.customers_tg[key] = self.telegram.add_user(
                name.capitalize(), username=key, language_code=language
            )
        return self.customers_tg[key]

    def customer_slack(self, name: str) -> JSON:
        key = name.lower()
        if key not in self.customers_slack:
            self.customers_slack[key] = self.slack.add_user(name.capitalize(), name=key)
        return self.customers_slack[key]

    @staticmethod
    def address(name: str) -> str:
        return f"{name.lower()}@example.org"

    async def customer_mail(self, name: str, text: str, subject: str | None = None) -> None:
        """A mail from ``name``: a reply to the last mail support sent them, if any."""
        if not self.gateway_mail_port:
            raise LookupError('the gateway\'s mail listener is not known (inbound = "smtp")')
        address = self.address(name)
        last: EmailMessage | None = next(reversed(self.mail.inbox(address)), None)
        headers: dict[str, str] = {}
        if last is not None and subject is None:
            subject = str(last["Subject"])
            headers = {
                "In-Reply-To": str(last["Message-ID"]),
                "References": str(last["Message-ID"]),
            }
        await MailSandbox.write(
            self.gateway_mail_port,
            sender=(name.capitalize(), address),
            to=self.support_address,
            subject=subject or f"Message from {name.capitalize()}",
            text=text,
            headers=headers,
        )

    # -- operators ------------------------------------------------------------------------

    def topic(self, number: int) -> int:
        for topic in self.telegram.topics(self.forum["id"]):
            # "🟢 Olga #12 #vip": the conversation's number comes first, tags after
            found = _TOPIC_NUMBER.search(topic["name"])
            if found is not None and int(found.group(1)) == number:
                return int(topic["message_thread_id"])
        raise LookupError(f"no Telegram topic for conversation #{number} (yet)")

    def card(self, number: int) -> JSON:
        for message in self.slack.top_level(self.channel):
            if message.get("bot_id") and f"· #{number}" in message.get("text", ""):
                return message
        raise LookupError(f"no Slack card for conversation #{number} (yet)")

    def operator_tg(self, operator: str, text: str, number: int | None = None) -> None:
        user = self.operators_tg[operator]
        thread = self.topic(number) if number is not None else None
        self.telegram.send(user, text, chat_id=self.forum["id"], thread_id=thread)

    def operator_slack(self, operator: str, text: str, number: int | None = None) -> None:
        user = self.operators_slack[operator]
        thread = self.card(number)["ts"] if number is not None else None
        self.slack.post(user, text, channel=self.channel, thread_ts=thread)

    def tap(self, name: str, choice: int) -> str:
        """A customer taps the ``choice``-th button under the last message that has
        buttons, on whichever platform they are."""
        key = name.lower()
        if key in self.customers_tg:
            user = self.customers_tg[key]
            for message in reversed(self.telegram.received(user["id"])):
                rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
                buttons = [b for row in rows for b in row]
                if buttons:
                    button = buttons[choice - 1]
                    self.telegram.press(user, message, button["callback_data"])
                    return str(button["text"])
        if key in self.customers_slack:
            user = self.customers_slack[key]
            dm = self.slack.dm(user)
            for message in reversed(self.slack.top_level(dm)):
                for block in message.get("blocks") or []:
                    if block.get("type") == "actions":
                        button = block["elements"][choice - 1]
                        self.slack.press(
                            user, dm, message, button["action_id"], value=button.get("value")
                        )
                        return str(button["text"]["text"])
        raise LookupError(f"{name} has no message with buttons")


@dataclass
class Watcher:
    """Prints every new message in every place, as the person there sees it."""

    out: TextIO
    ground: Playground
    seen: set[tuple[str, Any]] = field(default_factory=set)
    mails: int = 0
    #: a new customer's first answer is the greeting and who answers, in one message
    width: int = 240

    def line(self, place: str, who: str, text: str) -> None:
        shown = plain(text)
        if len(shown) > self.width:
            shown = shown[: self.width - 1] + "…"
        self.out.write(f"  {place:<34} {who}: {shown}\n")
        self.out.flush()

    def poll(self) -> None:
        self._telegram()
        self._slack()
        self._mail()

    async def forever(self, every: float = 0.05) -> None:
        while True:
            self.poll()
            await asyncio.sleep(every)

    def _names(self) -> dict[Any, str]:
        ground = self.ground
        names: dict[Any, str] = {u["id"]: u["first_name"] for u in ground.customers_tg.values()}
        names.update({u["id"]: u["real_name"] for u in ground.customers_slack.values()})
        return names

    def _telegram(self) -> None:
        world = self.ground.telegram.world
        forum = self.ground.forum.get("id")
        bot = world.bot["id"]
        names = self._names()
        for chat_id, messages in list(world.messages.items()):
            for message_id, message in list(messages.items()):
                key = ("tg", (chat_id, message_id))
                if key in self.seen or message.get("_deleted"):
                    continue
                self.seen.add(key)
                if "forum_topic_created" in message:
                    name = message["forum_topic_created"].get("name", "")
                    self.line("Telegram · operators' group", "topic opened", name)
                    continue
                sender = message.get("from") or {}
                who = "bot" if sender.get("id") == bot else sender.get("first_name", "?")
                text = message.get("text") or message.get("caption") or "[a file]"
                markup = message.get("reply_markup") or {}
                if markup.get("inline_keyboard") and who == "bot" and chat_id != forum:
                    rows = message["reply_markup"]["inline_keyboard"]
                    labels = [b["text"] for row in rows for b in row]
                    text += "  [" + " | ".join(labels) + "]"
                if chat_id == forum:
                    thread = message.get("message_thread_id")
                    topic = world.topics[chat_id].get(thread) if thread else None
                    where = f"Telegram · topic {topic['name']}" if topic else "Telegram · group"
                else:
                    where = f"Telegram · {names.get(chat_id, chat_id)}'s chat"
                self.line(where, who, text)

    def _slack(self) -> None:
        world = self.ground.slack.world
        workspace = self.ground.channel.get("id")
        names = self._names()
        for cid, messages in list(world.messages.items()):
            channel = world.channels.get(cid) or {}
            for ts, message in list(messages.items()):
                key = ("slack", (cid, ts))
                if key in self.seen or message.get("deleted"):
                    continue
                self.seen.add(key)
                user = message.get("user") or ""
                who = message.get("username") or (world.users.get(user) or {}).get(
                    "real_name", "app"
                )
                if message.get("bot_id") and not message.get("username"):
                    who = "app"
                text = message.get("text") or "[a file]"
                for block in message.get("blocks") or []:
                    if block.get("type") == "actions" and cid != workspace:
                        labels = [e["text"]["text"] for e in block["elements"] if "text" in e]
                        text += "  [" + " | ".join(labels) + "]"
                if cid == workspace:
                    thread = message.get("thread_ts")
                    if thread and thread != ts:
                        root = messages.get(thread) or {}
                        customer = plain(root.get("text", "")).split(" (")[0]
                        where = f"Slack · thread of {customer}"
                    else:
                        where = "Slack · #support-desk"
                else:
                    where = f"Slack · DM with {names.get(channel.get('user'), '?')}"
                self.line(where, who, text)

    def _mail(self) -> None:
        for message in self.ground.mail.received[self.mails :]:
            self.mails += 1
            sender = message["From"].addresses[0].display_name or "Support"
            self.line(
                f"Email · {message['To']}",
                str(sender),
                f"[{message['Subject']}] {body_of(message).strip()}",
            )


HELP = """\
What you can do (a new name is a new customer):
  tg NAME: TEXT                a customer writes to the bot on Telegram
  slack NAME: TEXT             a customer writes to the app in a Slack DM
  mail NAME: TEXT              a customer emails support (a reply, after the first)
  tap NAME N                   a customer taps the N-th button under the last message
  tg OPERATOR #N: TEXT         an operator writes in conversation N's Telegram topic
                               (replies, or commands: /close, /snooze 1h, /note ...,
                               /r to list saved replies, /r NAME to send one,
                               /tag vip, /priority urgent)
  slack OPERATOR #N: TEXT      an operator writes in conversation N's Slack thread
  tg OPERATOR: /online         an operator in the group's general topic (/away, /status)
  wait SECONDS                 pause (for lines piped in from a file)
  help, quit"""

_TOPIC_NUMBER = re.compile(r"\s#(\d+)(?=\s|$)")
_LINE = re.compile(r"^(tg|slack|mail)\s+([\w.-]+)(?:\s+#(\d+))?\s*:\s*(.+)$", re.S)


@dataclass
class Console:
    """Typed lines -> what people in the sandboxes do."""

    ground: Playground
    out: TextIO
    #: extra commands (name -> coroutine giving text), e.g. ``status``
    extra: dict[str, Callable[[], Awaitable[str]]] = field(default_factory=dict)

    async def handle(self, line: str) -> bool:
        """Do what ``line`` says; False when the user is done."""
        line = line.strip()
        if not line:
            return True
        if line in ("quit", "exit"):
            return False
        try:
            answer = await self._do(line)
        except (LookupError, ValueError, IndexError) as problem:
            answer = f"  ! {problem}"
        if answer:
            self.out.write(answer + "\n")
            self.out.flush()
        return True

    async def _do(self, line: str) -> str:
        if line == "help":
            return HELP
        if line in self.extra:
            return await self.extra[line]()
        if line.startswith("wait "):
            await asyncio.sleep(min(60.0, float(line.split()[1])))
            return ""
        if line.startswith("tap "):
            parts = shlex.split(line)
            if len(parts) != 3 or not parts[2].isdigit():
                raise ValueError("tap NAME N, e.g. tap olga 1")
            label = self.ground.tap(parts[1], int(parts[2]))
            return f"  ({parts[1]} tapped “{label}”)"
        match = _LINE.match(line)
        if match is None:
            raise ValueError("not understood; type help")
        platform, who, number, text = match.groups()
        ground = self.ground
        is_operator = who in (ground.operators_tg if platform == "tg" else ground.operators_slack)
        if platform == "mail":
            await ground.customer_mail(who, text)
        elif is_operator and platform == "tg":
            ground.operator_tg(who, text, int(number) if number else None)
        elif is_operator:
            ground.operator_slack(who, text, int(number) if number else None)
        elif number:
            raise ValueError(f"{who} is not an operator of the config")
        elif platform == "tg":
            ground.telegram.send(ground.customer_tg(who), text)
        else:
            ground.slack.post(ground.customer_slack(who), text)
        return ""

    async def run(self, lines: Callable[[], Awaitable[str | None]] | None = None) -> None:
        """Read lines (stdin by default) until quit or end of input."""
        read = lines or _stdin_line
        self.out.write(HELP + "\n")
        while True:
            line = await read()
            if line is None or not await self.handle(line):
                return


async def _stdin_line() -> str | None:
    line = await asyncio.to_thread(sys.stdin.readline)
    return line if line else None
