"""A visitor who leaves the page: the widget took their address, an operator's reply
follows them by email, their mailed answer continues the conversation, and the
widget shows it all when they come back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import make_msgid
from pathlib import Path

import aiohttp
from sqlmodel import select

from sandbox.mail import MailSandbox, body_of
from storage.models import Direction, OutboxRow
from storage.types import utcnow
from tests.support import all_conversations, messages, operator_writes, settle
from tests.test_email import SMTP_INBOUND
from tests.web_support import Browser, WebDesk, until, web_config, web_desk


@asynccontextmanager
async def mailing_desk(
    database_url: str, tmp_path: Path, after_minutes: float
) -> AsyncIterator[tuple[WebDesk, MailSandbox, aiohttp.ClientSession]]:
    """The web chat and the email channel, replies to absent visitors mailed after
    ``after_minutes``, the visitors' mail servers, and a browser's HTTP client."""
    mail = MailSandbox()
    await mail.start()
    try:
        config = web_config(
            database_url,
            tmp_path,
            operators=("anna",),
            web=f"email_after_minutes = {after_minutes}\n",
            extra=SMTP_INBOUND.format(spool=tmp_path / "spool", smtp_port=mail.port),
        )
        async with web_desk(config, email=True) as desk, aiohttp.ClientSession() as http:
            yield desk, mail, http
    finally:
        await mail.stop()


async def test_a_reply_follows_a_visitor_who_left_by_email_and_back(
    tmp_path: Path, database_url: str
) -> None:
    async with mailing_desk(database_url, tmp_path, 0) as (desk, mail, http):
        olga = Browser(desk.base, http)
        await olga.start()
        await olga.connect()
        await olga.send("Is the green mug in stock?")
        await olga.wait(lambda f: f["t"] == "ack", "the ack")
        assert olga.socket is not None
        await olga.socket.send_json({"t": "contact", "name": "Olga", "email": "Olga@Example.org"})
        thanks = await olga.wait(lambda f: f["t"] == "contact", "the thanks")
        assert thanks["email"] == "olga@example.org" and "olga@example.org" in thanks["thanks"]
        await settle(desk.gateway)
        (web_chat,) = await all_conversations(desk.gateway)
        # the operators are told, and the conversation now bears her name
        assert any(
            "olga@example.org" in d.outbound.text and d.outbound.audience == "workspace"
            for d in desk.tg.deliveries
        )
        assert any(
            d.outbound.card is not None and d.outbound.card.customer_name == "Olga"
            for d in desk.tg.deliveries
        )
        # while she is on the page, a reply reaches her there only
        await operator_writes(desk.gateway, desk.tg, "anna", web_chat.id, "Let me look")
        await olga.wait(lambda f: f.get("text") == "Let me look", "the live reply")
        await settle(desk.gateway)
        assert mail.inbox("olga@example.org") == []
        await olga.disconnect()
        # gone: the next reply is mailed to her too
        await operator_writes(desk.gateway, desk.tg, "anna", web_chat.id, "Yes, 4 left!")
        await until(lambda: mail.inbox("olga@example.org"), "the mail")
        (mailed,) = mail.inbox("olga@example.org")
        assert "Yes, 4 left!" in body_of(mailed) and "Anna" in str(mailed["From"])
        # her answer by mail continues the same conversation
        email = next(a for a in desk.gateway.adapters if a.name == "email")
        await MailSandbox.write(
            email.listen_port,  # type: ignore[attr-defined]
            sender=("Olga", "olga@example.org"),
            to="support@example.com",
            subject=str(mailed["Subject"]),
            text="Great, I will order two.",
            headers={"In-Reply-To": str(mailed["Message-ID"]), "References": make_msgid()},
        )
        await until(
            lambda: any(
                d.outbound.text.startswith("Great, I will order two") for d in desk.tg.deliveries
            ),
            "her mail in the workspace",
        )
        assert len(await all_conversations(desk.gateway)) == 1
        stored = await messages(desk.gateway, web_chat.id)
        assert [m.text.split("\n")[0] for m in stored if m.direction == Direction.IN] == [
            "Is the green mug in stock?",
            "Great, I will order two.",
        ]
        # back on the page: the reply and her mailed answer are in the widget
        back = Browser(desk.base, http, token=olga.token)
        await back.start()
        await back.connect()
        texts = [m["text"].split("\n")[0] for m in back.shown().values()]
        assert "Yes, 4 left!" in texts and "Great, I will order two." in texts
        await back.disconnect()


async def test_a_visitor_gone_a_moment_is_mailed_only_when_the_wait_is_over(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with mailing_desk(sqlite_url, tmp_path, 5) as (desk, mail, http):
        olga = Browser(desk.base, http)
        await olga.start()
        await olga.connect()
        await olga.send("hello")
        await olga.wait(lambda f: f["t"] == "ack", "the ack")
        status, _ = await olga.call("contact", {"token": olga.token, "email": "o@example.org"})
        assert status == 200
        await olga.disconnect()
        (web_chat,) = await all_conversations(desk.gateway)
        await operator_writes(desk.gateway, desk.tg, "anna", web_chat.id, "Here!")
        await settle(desk.gateway, only=("web",))
        async with desk.gateway.repository.transaction() as tx:
            result = await tx.session.exec(
                select(OutboxRow).where(OutboxRow.destination == "email")
            )
            (queued,) = result.all()
        # queued for when she has been gone five minutes, not sent now
        assert queued.status == "pending"
        wait = (queued.next_attempt_at - utcnow()).total_seconds()
        assert 4 * 60 < wait <= 5 * 60
        assert mail.received == []
