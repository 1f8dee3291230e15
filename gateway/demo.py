"""`gateway demo`: the real gateway, on a temporary SQLite file, with the built-in
sandboxes as Telegram, Slack and the customers' mail servers, playing a short story
and printing what each side sees.

Nothing here is a shortcut: the gateway is the one `gateway run` starts, aiogram and
slack-bolt talk to the sandboxes over their real wire protocols, and mail goes over
SMTP both ways. Only the platforms' rate limits are off (in the sandboxes, and the
group's 20 a minute in the gateway's config), so the story takes seconds.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from gateway.app import Gateway
from gateway.config import Config, parse_config
from gateway.plugins import channel_models
from gateway.status import collect_status, render_status
from sandbox.mail import MailSandbox, body_of
from sandbox.playground import Console, Playground, Watcher
from sandbox.site import SiteSandbox, web_section
from sandbox.slack import Limits as SlackLimits
from sandbox.slack import SlackSandbox
from sandbox.telegram import Limits as TelegramLimits
from sandbox.telegram import TelegramSandbox
from sandbox.visitor import Frame, WebVisitor
from storage import Database
from storage.migrate import upgrade

JSON = dict[str, Any]
#: how long one step may take before the demo gives up and says which
STEP_SECONDS = 20.0
#: how long the end waits for the workspaces to catch up
DRAIN_SECONDS = 30.0
#: the sandbox's group takes any number: the gateway need not spread the story's
#: copies over minutes, as it would under Telegram's 20 a minute
DEMO_GROUP_MESSAGES_PER_MINUTE = 600
SUPPORT_ADDRESS = "support@example.com"
WANDA = "wanda@example.org"
#: the web chat's look and behaviour in the demo: a reply to a visitor gone from the
#: page goes by mail at once
WEB = {"title": "Example Shop", "email_after_minutes": 0}

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

[[replies]]
name = "thanks"
title = "Thanks, anything else?"
text = "Thank you, {{customer}}! Is there anything else I can help with?"

[tags]
suggested = ["vip", "billing"]

{channels}
{web}
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


class Demo:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.ground = Playground(
            TelegramSandbox(limits=TelegramLimits(enabled=False)),
            SlackSandbox(limits=SlackLimits(enabled=False)),
            MailSandbox(),
            SUPPORT_ADDRESS,
        )
        self.gateway: Gateway | None = None
        self.config: Config | None = None
        self.watcher = Watcher(out, self.ground)
        self._printer: asyncio.Task[None] | None = None
        self.step_number = 0
        #: the shop's page with the web chat, and the visitor's browser there
        self.site = SiteSandbox("")
        self.http: aiohttp.ClientSession | None = None
        self.wanda: WebVisitor | None = None

    # -- setting up ------------------------------------------------------------------------

    async def start(self, workdir: Path) -> None:
        ground = self.ground
        tg, sl = ground.telegram, ground.slack
        await tg.start()
        await sl.start()
        await ground.mail.start()
        await self.site.start()
        ground.setup([("anna", "Anna", None, None), ("boris", "Boris", None, None)])
        self.config = parse_config(
            CONFIG.format(
                database=workdir / "demo.db",
                channels=ground.channel_sections(
                    listen_port=0,
                    spool_dir=workdir / "mail-spool",
                    slack_ping_seconds=1,
                    group_messages_per_minute=DEMO_GROUP_MESSAGES_PER_MINUTE,
                ),
                web=web_section(self.site.origin, workdir / "web-files", WEB),
                anna_tg=ground.operators_tg["anna"]["id"],
                boris_tg=ground.operators_tg["boris"]["id"],
                anna_slack=ground.operators_slack["anna"]["id"],
                boris_slack=ground.operators_slack["boris"]["id"],
            ),
            channel_models(),
        )
        db = Database(self.config.gateway.database_url)
        try:
            await upgrade(db)
        finally:
            await db.dispose()
        self.gateway = Gateway(self.config)
        await self.gateway.start()
        email = next(a for a in self.gateway.adapters if a.name == "email")
        ground.gateway_mail_port = email.listen_port  # type: ignore[attr-defined]
        self.site.gateway_url = f"http://127.0.0.1:{self.gateway.http.port}"
        self.http = aiohttp.ClientSession()
        self._printer = asyncio.create_task(self.watcher.forever())

    async def stop(self) -> None:
        if self._printer is not None:
            self._printer.cancel()
        if self.wanda is not None:
            await self.wanda.disconnect()
        if self.http is not None:
            await self.http.close()
        if self.gateway is not None:
            await self.gateway.stop()
        await self.site.stop()
        for part in (self.ground.mail, self.ground.slack, self.ground.telegram):
            await part.stop()

    # -- the story's means ---------------------------------------------------------------------

    def step(self, text: str) -> None:
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
        return self.ground.telegram.received(self.ground.customer_tg("olga")["id"])

    def to_carol(self) -> list[JSON]:
        slack = self.ground.slack
        dm = slack.dm(self.ground.customer_slack("carol"))
        return [m for m in slack.top_level(dm) if m.get("bot_id")]

    def pat_inbox(self) -> list[str]:
        return [body_of(m) for m in self.ground.mail.inbox(Playground.address("pat"))]

    # -- the story -------------------------------------------------------------------------------

    async def play(self) -> None:
        ground, gw = self.ground, self.gateway
        tg = ground.telegram
        assert gw is not None

        self.step("Boris is busy: he sets himself away from the operators' Telegram group")
        ground.operator_tg("boris", "/away")
        await self.until("Boris going away", lambda: _presence(gw, "boris", "away"))

        self.step("Olga writes to the support bot on Telegram; Anna is free and gets her")
        tg.send(ground.customer_tg("olga"), "Hi! My order #1234 hasn't arrived yet.")
        await self.until("Olga being told Anna will help", lambda: any(
            "Anna will help" in (m.get("text") or "") for m in self.to_olga()
        ))  # fmt: skip
        await self.until("Olga's topic in the group", lambda: ground.topic(1))
        await self.until("Olga's card in Slack", lambda: ground.card(1))

        self.step("Carol writes to the app in Slack; Anna is full and Boris away: the FAQ answers")
        ground.slack.post(ground.customer_slack("carol"), "How long does delivery take?")
        await self.until("Carol's FAQ answer", lambda: any(
            "2-4 working days" in m.get("text", "") for m in self.to_carol()
        ))  # fmt: skip
        await self.until("Carol's place in the queue", lambda: any(
            "number 1 in line" in m.get("text", "") for m in self.to_carol()
        ))  # fmt: skip

        self.step("Pat emails support; the mail waits in the queue too")
        await ground.customer_mail(
            "pat",
            "Hello, could you send me the invoice for order 1234? Thanks, Pat",
            subject="Invoice for order 1234",
        )
        await self.until("Pat's place in the queue", lambda: any(
            "number 2 in line" in body for body in self.pat_inbox()
        ))  # fmt: skip

        self.step("Boris is back: /online in the group; he takes the oldest waiting, Carol")
        ground.operator_tg("boris", "/online")
        await self.until("Carol being told Boris will help", lambda: any(
            "Boris will help" in m.get("text", "") for m in self.to_carol()
        ))  # fmt: skip

        self.step("Anna answers Olga from her Telegram topic")
        ground.operator_tg(
            "anna",
            "Sorry for the wait! It left our warehouse today; here is the tracking: TR-5521.",
            1,
        )
        await self.until("Anna's answer reaching Olga", lambda: any(
            "TR-5521" in (m.get("text") or "") for m in self.to_olga()
        ))  # fmt: skip

        self.step("Boris answers Carol from her Slack thread")
        await self.until("Carol's card in Slack", lambda: ground.card(2))
        ground.operator_slack(
            "boris", "Hi Carol, yours ships tomorrow, so Thursday at the latest.", 2
        )
        await self.until("Boris's answer reaching Carol", lambda: any(
            "Thursday" in m.get("text", "") for m in self.to_carol()
        ))  # fmt: skip

        self.step("Anna closes Olga's conversation with the topic's Close button")
        forum = ground.forum["id"]
        header = await self.until(
            "Olga's topic header", lambda: tg.received(forum, ground.topic(1))[0]
        )
        tg.press(ground.operators_tg["anna"], header, "close")
        await self.until("Olga being asked for a rating", lambda: any(
            "rate our help" in (m.get("text") or "") for m in self.to_olga()
        ))  # fmt: skip

        self.step("Olga rates it 5 with a tap, and leaves a comment")
        ground.tap("olga", 5)
        await self.until("the request for a comment", lambda: any(
            "what we could do better" in (m.get("text") or "") for m in self.to_olga()
        ))  # fmt: skip
        tg.send(ground.customer_tg("olga"), "Quick and friendly, thank you!")
        await self.until("the thanks for the feedback", lambda: any(
            "Thank you for your feedback" in (m.get("text") or "") for m in self.to_olga()
        ))  # fmt: skip

        self.step("Anna's slot is free again: Pat's mail goes to her, and Pat hears by mail")
        await self.until("Pat being told Anna will help", lambda: any(
            "Anna will help" in body for body in self.pat_inbox()
        ))  # fmt: skip

        self.step("Wanda writes in the web chat on the shop's site; everyone is busy, so she "
                  "leaves her email and closes the page")  # fmt: skip
        wanda = await self.web_visitor()
        await wanda.send("Do you have the blue mug in stock?")
        await self.until("Wanda's place in the queue", lambda: any(
            "in line" in f.get("text", "") for f in wanda.frames
        ))  # fmt: skip
        assert wanda.socket is not None
        await wanda.socket.send_json({"t": "contact", "name": "Wanda", "email": WANDA})
        await self.until("Wanda's address kept", lambda: any(
            f["t"] == "contact" for f in wanda.frames
        ))  # fmt: skip
        await wanda.disconnect()

        self.step("Boris closes Carol's conversation from its Telegram topic; Wanda is next")
        await self.until("Carol's topic in the group", lambda: ground.topic(2))
        ground.operator_tg("boris", "/close", 2)
        await self.until("Wanda's topic in the group", lambda: ground.topic(4))

        self.step("Boris answers Wanda from her topic; she has left, so it reaches her by mail")
        ground.operator_tg("boris", "Yes! 4 blue mugs left; they ship the next day.", 4)
        await self.until("Boris's answer in Wanda's mailbox", lambda: any(
            "4 blue mugs" in body_of(m) for m in ground.mail.inbox(WANDA)
        ))  # fmt: skip

        self.step("Wanda opens the shop's page again: the answer is in the chat too")
        wanda.frames.clear()
        await wanda.connect()
        await self.until("the answer in Wanda's chat", lambda: any(
            "4 blue mugs" in text for text in wanda.replies()
        ))  # fmt: skip
        await self.drain()

    async def web_visitor(self) -> WebVisitor:
        """Wanda's browser on the shop's page, printing what her chat shows."""
        assert self.http is not None
        wanda = WebVisitor(self.site.gateway_url, self.http, self.site.origin)
        self.wanda = wanda

        def show(frame: Frame) -> None:
            if frame["t"] != "msg" or not frame.get("text"):
                return
            who = {"customer": "Wanda", "bot": "bot"}.get(frame["side"]) or frame["author"]
            self.watcher.line("Web chat · Wanda's page", who, frame["text"])

        wanda.on_frame = show
        await wanda.start(language="en")
        await wanda.connect()
        return wanda

    async def drain(self, limit: float = DRAIN_SECONDS) -> None:
        """Let the last copies reach the workspaces. Telegram lets a bot post about 20
        messages a minute in one group, and the gateway keeps under that, so the
        operators' side may trail the customers' by a few seconds."""
        assert self.gateway is not None
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


async def run_demo(out: TextIO = sys.stdout, *, interactive: bool = False) -> int:
    """The whole demo: 0 when every step happened, 1 with the reason when one did not.
    ``interactive``: the same setup, and the person at the terminal plays the people."""
    # the transcript is the demo's output; the gateway's own log only for trouble
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    out.write(
        "Support gateway demo: the real gateway on a temporary SQLite file, with built-in\n"
        "sandboxes playing Telegram, Slack and the customers' mail servers.\n"
        "Operators: Anna and Boris (in a Telegram forum group and a Slack channel).\n"
        "Customers: Olga (Telegram), Carol (Slack), Pat (email), Wanda (the web chat).\n"
    )
    demo = Demo(out)
    with tempfile.TemporaryDirectory(prefix="gateway-demo-") as workdir:
        try:
            await demo.start(Path(workdir))
            if interactive:
                out.write(
                    "\nYou play everyone: customers on Telegram (tg), Slack (slack) or email "
                    "(mail), and the operators anna and boris.\nTry: tg olga: hello\n"
                    f"Or chat as a web visitor: open {demo.site.origin}/ in a browser.\n\n"
                )
                await Console(demo.ground, out, extra={"status": demo.status}).run()
                return 0
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
