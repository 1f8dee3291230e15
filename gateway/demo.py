"""`gateway demo`: the real gateway, on a temporary SQLite file, with the built-in
sandboxes as Telegram, Slack and the customers' mail servers, playing a short story
and printing what each side sees.

Nothing here is a shortcut: the gateway is the one `gateway run` starts, aiogram and
slack-bolt talk to the sandboxes over their real wire protocols, and mail goes over
SMTP both ways. Only the platforms' rate limits are off, so the story takes seconds.
"""

from __future__ import annotations

import asyncio
import html
import inspect
import logging
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from gateway.app import Gateway, discover_plugins
from gateway.config import Config, parse_config
from gateway.sandbox.mail import MailSandbox, body_of
from gateway.sandbox.slack import Limits as SlackLimits
from gateway.sandbox.slack import SlackSandbox
from gateway.sandbox.telegram import Limits as TelegramLimits
from gateway.sandbox.telegram import TelegramSandbox
from gateway.status import collect_status, render_status
from storage import Database
from storage.migrate import upgrade

JSON = dict[str, Any]
#: how long one step may take before the demo gives up and says which
STEP_SECONDS = 20.0
#: how long the end waits for the workspaces to catch up
DRAIN_SECONDS = 30.0
SUPPORT_ADDRESS = "support@example.com"

CONFIG = """
[gateway]
database_url = "sqlite+aiosqlite:///{database}"
http_port = 0
reload_seconds = 0

[routing]
default_max_chats = 1

[faq]
when = "no_operator_free"

[[faq.entries]]
id = "delivery_time"
questions = ["How long does delivery take?", "When will my parcel arrive?"]
answer = "Delivery takes 2-4 working days; you get a tracking link by mail."

[telegram]
token = "{telegram_token}"
api_base = "{telegram_api}"
workspace_chat_id = {forum}
poll_timeout_seconds = 1

[slack]
bot_token = "{slack_bot_token}"
app_token = "{slack_app_token}"
api_base = "{slack_api}"
workspace_channel = "{slack_channel}"
ping_interval_seconds = 1

[email]
address = "{address}"
inbound = "smtp"
listen_port = 0
spool_dir = "{spool}"
smtp_host = "127.0.0.1"
smtp_port = {mail_port}
smtp_security = "none"

[[operators]]
id = "anna"
name = "Anna"
telegram_id = {anna_tg}
slack_id = "{anna_slack}"

[[operators]]
id = "boris"
name = "Boris"
telegram_id = {boris_tg}
slack_id = "{boris_slack}"
"""

NEXT_STEPS = """\
Next: connect your own platforms. Copy config.example.toml to config.toml and set
  [telegram]  token = "${TELEGRAM_TOKEN}", workspace_chat_id = your forum group's id
  [slack]     bot_token = "${SLACK_BOT_TOKEN}", app_token = "${SLACK_APP_TOKEN}",
              workspace_channel = the operators' channel id
  [email]     address, imap_host / imap_user / imap_password (or inbound = "smtp"),
              smtp_host / smtp_user / smtp_password
  [[operators]]  each person's name, telegram_id and/or slack_id
then: gateway check-config config.toml && gateway run --config config.toml"""


class DemoFailure(Exception):
    """A step that did not happen: the demo stops and says which."""


def _plain(text: str) -> str:
    """Telegram HTML and Slack mrkdwn as a terminal shows them."""
    text = re.sub(r"<a href=\"tg://user\?id=\d+\">([^<]*)</a>", r"@\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    return " / ".join(line.strip() for line in html.unescape(text).splitlines() if line.strip())


@dataclass
class Watcher:
    """Prints every new message in every place, as the person there sees it."""

    out: TextIO
    telegram: TelegramSandbox
    slack: SlackSandbox
    mail: MailSandbox
    forum: int
    channel: str
    names: dict[Any, str]
    seen: set[tuple[str, Any]] = field(default_factory=set)
    mails: int = 0

    def line(self, place: str, who: str, text: str) -> None:
        shown = _plain(text)
        if len(shown) > 150:
            shown = shown[:149] + "…"
        self.out.write(f"  {place:<34} {who}: {shown}\n")
        self.out.flush()

    def poll(self) -> None:
        self._telegram()
        self._slack()
        self._mail()

    def _telegram(self) -> None:
        world = self.telegram.world
        bot = world.bot["id"]
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
                if chat_id == self.forum:
                    thread = message.get("message_thread_id")
                    topic = world.topics[chat_id].get(thread) if thread else None
                    where = f"Telegram · topic {topic['name']}" if topic else "Telegram · group"
                else:
                    where = f"Telegram · {self.names.get(chat_id, chat_id)}'s chat"
                self.line(where, who, text)

    def _slack(self) -> None:
        world = self.slack.world
        for cid, messages in list(world.messages.items()):
            channel = world.channels.get(cid) or {}
            for ts, message in list(messages.items()):
                key = ("slack", (cid, ts))
                if key in self.seen or message.get("deleted"):
                    continue
                self.seen.add(key)
                user = message.get("user") or ""
                who = (
                    message.get("username")
                    or (world.users.get(user) or {}).get("real_name")
                    or "app"
                )
                if message.get("bot_id") and not message.get("username"):
                    who = "app"
                if cid == self.channel:
                    thread = message.get("thread_ts")
                    if thread and thread != ts:
                        root = messages.get(thread) or {}
                        customer = _plain(root.get("text", "")).split(" (")[0]
                        where = f"Slack · thread of {customer}"
                    else:
                        where = "Slack · #support-desk"
                else:
                    where = f"Slack · DM with {self.names.get(channel.get('user'), '?')}"
                self.line(where, who, message.get("text") or "[a file]")

    def _mail(self) -> None:
        for message in self.mail.received[self.mails :]:
            self.mails += 1
            text = body_of(message).strip()
            self.line(
                f"Email · {message['To']}",
                str(message["From"].addresses[0].display_name or "Support"),
                f"[{message['Subject']}] {text}",
            )


class Demo:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.telegram = TelegramSandbox(limits=TelegramLimits(enabled=False))
        self.slack = SlackSandbox(limits=SlackLimits(enabled=False))
        self.mail = MailSandbox()
        self.gateway: Gateway | None = None
        self.config: Config | None = None
        self.watcher: Watcher | None = None
        self._printer: asyncio.Task[None] | None = None
        self.step_number = 0

    # -- setting up ------------------------------------------------------------------------

    async def start(self, workdir: Path) -> None:
        await self.telegram.start()
        await self.slack.start()
        await self.mail.start()
        tg, sl = self.telegram, self.slack
        self.forum = tg.add_forum("Support desk")
        self.anna_tg, self.boris_tg = tg.add_user("Anna"), tg.add_user("Boris")
        self.anna_sl = sl.add_user("Anna Lind", name="anna")
        self.boris_sl = sl.add_user("Boris Petrov", name="boris")
        self.channel = sl.add_channel("support-desk", members=[self.anna_sl, self.boris_sl])
        self.olga = tg.add_user("Olga", language_code="en")
        self.carol = sl.add_user("Carol Smith", name="carol")
        database = workdir / "demo.db"
        self.config = parse_config(
            CONFIG.format(
                database=database,
                telegram_token=tg.token,
                telegram_api=tg.api_base,
                forum=self.forum["id"],
                slack_bot_token=sl.bot_token,
                slack_app_token=sl.app_token,
                slack_api=sl.api_base,
                slack_channel=self.channel["id"],
                address=SUPPORT_ADDRESS,
                spool=workdir / "mail-spool",
                mail_port=self.mail.port,
                anna_tg=self.anna_tg["id"],
                boris_tg=self.boris_tg["id"],
                anna_slack=self.anna_sl["id"],
                boris_slack=self.boris_sl["id"],
            ),
            {name: plugin.config_model for name, plugin in discover_plugins().items()},
        )
        db = Database(self.config.gateway.database_url)
        try:
            await upgrade(db)
        finally:
            await db.dispose()
        self.gateway = Gateway(self.config)
        await self.gateway.start()
        names: dict[Any, str] = {self.olga["id"]: "Olga", self.carol["id"]: "Carol"}
        self.watcher = Watcher(
            self.out, tg, sl, self.mail, self.forum["id"], self.channel["id"], names
        )
        self._printer = asyncio.create_task(self._print_forever())

    async def _print_forever(self) -> None:
        assert self.watcher is not None
        while True:
            self.watcher.poll()
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._printer is not None:
            self._printer.cancel()
        if self.gateway is not None:
            await self.gateway.stop()
        for part in (self.mail, self.slack, self.telegram):
            await part.stop()

    # -- the story's means ---------------------------------------------------------------------

    def step(self, text: str) -> None:
        if self.watcher is not None:
            self.watcher.poll()
        self.step_number += 1
        self.out.write(f"\n▶ {self.step_number}. {text}\n")
        self.out.flush()

    async def until(self, what: str, check: Callable[[], Any]) -> Any:
        """Wait for something the story needs; past STEP_SECONDS the demo fails, naming it."""
        deadline = asyncio.get_running_loop().time() + STEP_SECONDS
        while True:
            try:
                result = check()
                if inspect.isawaitable(result):
                    result = await result
                if result:
                    return result
            except (LookupError, StopIteration, AttributeError):
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise DemoFailure(f"step {self.step_number}: {what} did not happen")
            await asyncio.sleep(0.05)

    def to_olga(self) -> list[JSON]:
        return self.telegram.received(self.olga["id"])

    def to_carol(self) -> list[JSON]:
        dm = self.slack.dm(self.carol)
        return [m for m in self.slack.top_level(dm) if m.get("bot_id")]

    def topic(self, name: str) -> int:
        for topic in self.telegram.topics(self.forum["id"]):
            if name in topic["name"]:
                return int(topic["message_thread_id"])
        raise LookupError(name)

    def card(self, name: str) -> JSON:
        for message in self.slack.top_level(self.channel):
            if message.get("bot_id") and name in message.get("text", ""):
                return message
        raise LookupError(name)

    def pat_inbox(self) -> list[str]:
        return [body_of(m) for m in self.mail.inbox("pat@example.org")]

    # -- the story -------------------------------------------------------------------------------

    async def play(self) -> None:
        tg, sl, gw = self.telegram, self.slack, self.gateway
        assert gw is not None
        forum = self.forum["id"]

        self.step("Boris is busy: he sets himself away from the operators' Telegram group")
        tg.send(self.boris_tg, "/away", chat_id=forum)
        await self.until("Boris going away", lambda: _presence(gw, "boris", "away"))

        self.step("Olga writes to the support bot on Telegram; Anna is free and gets her")
        tg.send(self.olga, "Hi! My order #1234 hasn't arrived yet.")
        await self.until("Olga being told Anna will help", lambda: any(
            "Anna will help" in (m.get("text") or "") for m in self.to_olga()
        ))  # fmt: skip
        await self.until("Olga's topic in the group", lambda: self.topic("Olga"))
        await self.until("Olga's card in Slack", lambda: self.card("Olga"))

        self.step("Carol writes to the app in Slack; Anna is full and Boris away: the FAQ answers")
        sl.post(self.carol, "How long does delivery take?")
        await self.until("Carol's FAQ answer", lambda: any(
            "2-4 working days" in m.get("text", "") for m in self.to_carol()
        ))  # fmt: skip
        await self.until("Carol's place in the queue", lambda: any(
            "number 1 in line" in m.get("text", "") for m in self.to_carol()
        ))  # fmt: skip

        self.step("Pat emails support; the mail waits in the queue too")
        port = next(a for a in gw.adapters if a.name == "email").listen_port  # type: ignore[attr-defined]
        await MailSandbox.write(
            port,
            sender=("Pat Doe", "pat@example.org"),
            to=SUPPORT_ADDRESS,
            subject="Invoice for order 1234",
            text="Hello, could you send me the invoice for order 1234? Thanks, Pat",
        )
        await self.until("Pat's place in the queue", lambda: any(
            "number 2 in line" in body for body in self.pat_inbox()
        ))  # fmt: skip

        self.step("Boris is back: /online in the group; he takes the oldest waiting, Carol")
        tg.send(self.boris_tg, "/online", chat_id=forum)
        await self.until("Carol being told Boris will help", lambda: any(
            "Boris will help" in m.get("text", "") for m in self.to_carol()
        ))  # fmt: skip

        self.step("Anna answers Olga from her Telegram topic")
        tg.send(
            self.anna_tg,
            "Sorry for the wait! It left our warehouse today; here is the tracking: TR-5521.",
            chat_id=forum,
            thread_id=self.topic("Olga"),
        )
        await self.until("Anna's answer reaching Olga", lambda: any(
            "TR-5521" in (m.get("text") or "") for m in self.to_olga()
        ))  # fmt: skip

        self.step("Boris answers Carol from her Slack thread")
        card = await self.until("Carol's card in Slack", lambda: self.card("Carol"))
        sl.post(
            self.boris_sl,
            "Hi Carol, yours ships tomorrow, so Thursday at the latest.",
            channel=self.channel,
            thread_ts=card["ts"],
        )
        await self.until("Boris's answer reaching Carol", lambda: any(
            "Thursday" in m.get("text", "") for m in self.to_carol()
        ))  # fmt: skip

        self.step("Anna closes Olga's conversation with the topic's Close button")
        header = await self.until(
            "Olga's topic header", lambda: tg.received(forum, self.topic("Olga"))[0]
        )
        tg.press(self.anna_tg, header, "close")
        ask = await self.until("Olga being asked for a rating", lambda: next(
            m for m in self.to_olga() if "rate our help" in (m.get("text") or "")
        ))  # fmt: skip

        self.step("Olga rates it 5 with a tap, and leaves a comment")
        tg.press(self.olga, ask, "pick:5")
        await self.until("the request for a comment", lambda: any(
            "what we could do better" in (m.get("text") or "") for m in self.to_olga()
        ))  # fmt: skip
        tg.send(self.olga, "Quick and friendly, thank you!")
        await self.until("the thanks for the feedback", lambda: any(
            "Thank you for your feedback" in (m.get("text") or "") for m in self.to_olga()
        ))  # fmt: skip

        self.step("Anna's slot is free again: Pat's mail goes to her, and Pat hears by mail")
        await self.until("Pat being told Anna will help", lambda: any(
            "Anna will help" in body for body in self.pat_inbox()
        ))  # fmt: skip
        await self.drain()

    async def drain(self, limit: float = DRAIN_SECONDS) -> None:
        """Let the last copies reach the workspaces. Telegram lets a bot post about 20
        messages a minute in one group, and the gateway keeps under that, so the
        operators' side may trail the customers' by a few seconds."""
        assert self.gateway is not None and self.watcher is not None
        waiting = await _undelivered(self.gateway)
        if waiting:
            self.out.write(
                f"\n  … {waiting} copies still on their way to the workspaces: the gateway "
                "keeps under Telegram's\n    limit of about 20 messages a minute per group "
                "(and Slack's 1 a second per channel)\n"
            )
        deadline = asyncio.get_running_loop().time() + limit
        while waiting and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
            waiting = await _undelivered(self.gateway)
        await asyncio.sleep(0.2)
        self.watcher.poll()

    async def status(self) -> str:
        assert self.gateway is not None and self.config is not None
        return render_status(await collect_status(self.gateway.repository, self.config))


async def _undelivered(gateway: Gateway) -> int:
    async with gateway.repository.transaction() as tx:
        counts = await tx.outbox_counts()
    return sum(n for (_, state), n in counts.items() if state in ("pending", "sending"))


async def _presence(gateway: Gateway, operator: str, presence: str) -> bool:
    async with gateway.repository.transaction() as tx:
        state = (await tx.operator_states()).get(operator)
    return state is not None and str(state.presence) == presence


async def run_demo(out: TextIO = sys.stdout) -> int:
    """The whole demo: 0 when every step happened, 1 with the reason when one did not."""
    # the transcript is the demo's output; the gateway's own log only for trouble
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    out.write(
        "Support gateway demo: the real gateway on a temporary SQLite file, with built-in\n"
        "sandboxes playing Telegram, Slack and the customers' mail servers.\n"
        "Operators: Anna and Boris (in a Telegram forum group and a Slack channel).\n"
        "Customers: Olga (Telegram), Carol (Slack), Pat (email).\n"
    )
    demo = Demo(out)
    with tempfile.TemporaryDirectory(prefix="gateway-demo-") as workdir:
        try:
            await demo.start(Path(workdir))
            await demo.play()
            out.write("\n`gateway status` now:\n\n" + await demo.status() + "\n\n")
            out.write(NEXT_STEPS + "\n")
        except DemoFailure as failure:
            out.write(f"\nThe demo failed: {failure}\n")
            return 1
        except Exception as error:  # any other trouble: say it plainly, exit non-zero
            out.write(f"\nThe demo failed: {type(error).__name__}: {error}\n")
            return 1
        finally:
            await demo.stop()
    return 0
