"""Email end to end: Dovecot as the mailbox, aiosmtpd as the receiving server, Slack
(its sandbox) as the operators' workspace, the real gateway in between."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.header import Header
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import aiohttp
import aiosmtplib
import pytest
from sqlmodel import select

from storage import Conversation, Message
from tests.mail_servers import Dovecot, SmtpSink, run_dovecot, run_smtp
from tests.slack_support import SlackDesk, slack_desk
from tests.support import all_conversations, settle
from tests.telegram_support import eventually

EMAIL = """
[email]
address = "support@example.com"
display_name = "Support"
imap_host = "127.0.0.1"
imap_port = {imap_port}
imap_user = "{user}"
imap_password = "{password}"
imap_ssl = false
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
smtp_security = "none"
poll_seconds = 0.5
{extra}
"""


@asynccontextmanager
async def email_desk(
    database_url: str, extra: str = ""
) -> AsyncIterator[tuple[SlackDesk, Dovecot, SmtpSink]]:
    with run_dovecot() as dovecot:
        async with run_smtp() as smtp:
            extra = EMAIL.format(
                imap_port=dovecot.port,
                user=dovecot.user,
                password=dovecot.password,
                smtp_port=smtp.port,
                extra=extra,
            )
            async with slack_desk(database_url, extra=extra) as desk:
                yield desk, dovecot, smtp


def mail(
    text: str,
    *,
    subject: str = "My order is late",
    sender: str = "Olga Ivanova <olga@example.org>",
    extra: dict[str, str] | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@example.com"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="example.org")
    for key, value in (extra or {}).items():
        message[key] = value
    message.set_content(text)
    return message


def sent_to(smtp: SmtpSink, address: str) -> list[EmailMessage]:
    return [m for m in smtp.received if address in str(m["To"])]


def body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


async def test_a_mail_opens_a_conversation_and_anna_answers_threaded(database_url: str) -> None:
    async with email_desk(database_url) as (desk, dovecot, smtp):
        first = mail("Hello, where is parcel 77?")
        dovecot.append(first.as_bytes())
        await eventually(lambda: desk.texts("Olga Ivanova"))
        assert desk.texts("Olga Ivanova")[0] == "My order is late\n\nHello, where is parcel 77?"
        # the automatic answer (greeting and who answers, one mail) says it is automatic
        await eventually(lambda: len(sent_to(smtp, "olga@example.org")) == 1)
        greeting = sent_to(smtp, "olga@example.org")[0]
        assert greeting["Auto-Submitted"] == "auto-replied"
        assert greeting["In-Reply-To"] == first["Message-ID"]
        # read only once committed, then marked
        await eventually(lambda: "\\Seen" in dovecot.flags()[0][1])

        desk.sandbox.post(
            desk.anna, "It ships today.", channel=desk.channel, thread_ts=desk.thread_of("Olga")
        )
        answer = await eventually(
            lambda: next(m for m in sent_to(smtp, "olga@example.org") if "ships" in body(m))
        )
        sender = answer["From"].addresses[0]
        assert (sender.display_name, sender.addr_spec) == ("Anna (Support)", "support@example.com")
        assert answer["Subject"] == "Re: My order is late [#1]"
        assert answer["In-Reply-To"] == first["Message-ID"]
        assert first["Message-ID"] in answer["References"]
        assert answer["Auto-Submitted"] is None
        assert answer.get_body(preferencelist=("html",)) is not None

        # Olga answers Anna's mail: it joins the conversation, quotes stripped
        reply = mail(
            "Great, thanks!\n\nOn Mon, Anna wrote:\n> It ships today.",
            subject="Re: My order is late [#1]",
            extra={"In-Reply-To": answer["Message-ID"], "References": answer["Message-ID"]},
        )
        dovecot.append(reply.as_bytes())
        await eventually(lambda: "Great, thanks!" in desk.texts("Olga Ivanova"))
        # a mail with no reference to us opens a new conversation
        dovecot.append(mail("Another question", subject="Invoice").as_bytes())
        await eventually(lambda: len(desk.cards()) == 2)
        await settle(desk.gateway)
        async with desk.gateway.repository.transaction() as tx:
            conversations = (await tx.session.exec(select(Conversation))).all()
        assert [c.subject for c in conversations] == ["My order is late", "Invoice"]


@pytest.mark.long
async def test_charsets_attachments_and_a_broken_mail(sqlite_url: str) -> None:
    async with email_desk(sqlite_url) as (desk, dovecot, _smtp):
        for number, charset in enumerate(("koi8-r", "koi8-u", "cp1251")):
            text = {"koi8-r": "Где заказ?", "koi8-u": "Де ґудзик?", "cp1251": "Верните деньги"}[
                charset
            ]
            raw = (
                f"From: {Header(f'Клиент {number}', charset).encode()} <c{number}@example.org>\r\n"
                f"To: support@example.com\r\nSubject: {Header('Вопрос', charset).encode()}\r\n"
                f"Message-ID: <cyr{number}@example.org>\r\nMIME-Version: 1.0\r\n"
                f"Content-Type: text/plain; charset={charset}\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\n"
            ).encode() + text.encode(charset)
            dovecot.append(raw)
            await eventually(
                lambda n=number, t=text: desk.texts(f"Клиент {n}") == [f"Вопрос\n\n{t}"]
            )

        with_file = mail("The bill is attached", sender="Pat <pat@example.org>")
        with_file.add_attachment(
            b"%PDF-1.4 bill", maintype="application", subtype="pdf", filename="bill.pdf"
        )
        dovecot.append(with_file.as_bytes())
        shared = await eventually(lambda: [m for m in desk.replies("Pat") if m.get("files")])
        uploaded = desk.sandbox.file(shared[0]["files"][0]["id"])
        assert (uploaded.name, uploaded.data) == ("bill.pdf", b"%PDF-1.4 bill")

        # HTML only, with an inline image: readable text, the image passed on
        html = mail("", sender="Hana <hana@example.org>")
        html.set_content(
            "<html><body><p>Look at <b>this</b>:</p><img src='cid:shot'>"
            "<script>steal()</script></body></html>",
            subtype="html",
        )
        html.add_related(b"\x89PNG shot", maintype="image", subtype="png", cid="<shot>")
        dovecot.append(html.as_bytes())
        await eventually(lambda: any("Look at this:" in t for t in desk.texts("Hana")))
        assert not any("steal" in t or "<b>" in t for t in desk.texts("Hana"))
        image = await eventually(lambda: [m for m in desk.replies("Hana") if m.get("files")])
        assert desk.sandbox.file(image[0]["files"][0]["id"]).data == b"\x89PNG shot"

        broken = (
            b"From: broken@example.org\r\nSubject: help\r\nMessage-ID: <broken@example.org>\r\n"
            b'Content-Type: multipart/mixed; boundary="never"\r\n\r\n--never\r\n'
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n%%%\r\n"
        )
        dovecot.append(broken)
        await eventually(
            lambda: any("could not be read" in t for t in desk.texts("broken@example.org"))
        )


async def test_robots_get_no_answer_and_bounces_reach_operators(sqlite_url: str) -> None:
    async with email_desk(sqlite_url) as (desk, dovecot, smtp):
        away = mail("I am on holiday until Monday.", sender="Bob <bob@example.org>")
        away["Auto-Submitted"] = "auto-replied"
        dovecot.append(away.as_bytes())
        await eventually(lambda: desk.texts("Bob"))
        await settle(desk.gateway)
        assert sent_to(smtp, "bob@example.org") == []  # no greeting to a robot

        dovecot.append(mail("Help me", sender="Gone <gone@example.org>").as_bytes())
        greeting = await eventually(lambda: sent_to(smtp, "gone@example.org")[0])
        bounce = (
            b"From: MAILER-DAEMON@mx.example.org\r\nTo: support@example.com\r\n"
            b"Subject: Undelivered Mail\r\nMessage-ID: <b1@mx>\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
            b"--B\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n"
            b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
            b"Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            b"Diagnostic-Code: smtp; 550 5.1.1 mailbox unavailable\r\n"
            b"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: "
            + str(greeting["Message-ID"]).encode()
            + b"\r\n\r\n--B--\r\n"
        )
        dovecot.append(bounce)
        await eventually(
            lambda: any(
                "Not delivered" in t and "mailbox unavailable" in t for t in desk.texts("Gone")
            )
        )
        assert len(desk.cards()) == 2  # Bob and Gone; the bounce opened nothing


async def test_a_restart_with_unread_mail_makes_no_duplicates(sqlite_url: str) -> None:
    with run_dovecot() as dovecot:
        async with run_smtp() as smtp:
            extra = EMAIL.format(
                imap_port=dovecot.port,
                user=dovecot.user,
                password=dovecot.password,
                smtp_port=smtp.port,
                extra="",
            )
            for n in range(3):
                dovecot.append(mail(f"question {n}", sender="Kim <kim@example.org>").as_bytes())
            async with slack_desk(sqlite_url, extra=extra) as desk:
                # each mail without a reference to us is a conversation of its own
                await eventually(lambda: len([c for c in desk.cards() if "Kim" in c["text"]]) == 3)
                await eventually(lambda: all("\\Seen" in f for _, f in dovecot.flags()))
            # someone marks everything unread again, and a new mail arrives
            import imaplib

            with imaplib.IMAP4("127.0.0.1", dovecot.port) as imap:
                imap.login(dovecot.user, dovecot.password)
                imap.select("INBOX")
                imap.store("1:*", "-FLAGS", "(\\Seen)")
            dovecot.append(mail("question 3", sender="Kim <kim@example.org>").as_bytes())
            async with slack_desk(sqlite_url, extra=extra) as desk:
                await eventually(lambda: all("\\Seen" in f for _, f in dovecot.flags()))
                await settle(desk.gateway)
                async with desk.gateway.repository.transaction() as tx:
                    stored = (
                        await tx.session.exec(select(Message).where(Message.direction == "in"))
                    ).all()
                assert sorted(m.text.split("\n\n")[-1] for m in stored) == [
                    f"question {n}" for n in range(4)
                ]


async def test_files_corrections_refusals_and_the_processed_folder(sqlite_url: str) -> None:
    async with email_desk(sqlite_url, extra='processed_folder = "Processed"') as (
        desk,
        dovecot,
        smtp,
    ):
        sandbox = desk.sandbox
        dovecot.append(mail("Can you send the manual?", sender="Lea <lea@example.org>").as_bytes())
        await eventually(lambda: desk.texts("Lea"))
        # processed mail leaves the inbox for the processed folder, read
        await eventually(lambda: dovecot.flags() == [])
        assert "\\Seen" in dovecot.flags("Processed")[0][1]
        await eventually(lambda: len(sent_to(smtp, "lea@example.org")) == 1)

        # the mail server says "later" once: the answer still goes, once; Anna's file with it
        smtp.reject.append("451 4.3.0 try again later")
        reply = sandbox.post(
            desk.anna,
            "Here it is.",
            channel=desk.channel,
            thread_ts=desk.thread_of("Lea"),
            files=[("manual.pdf", b"%PDF manual", "application/pdf")],
        )
        answer = await eventually(
            lambda: next(m for m in sent_to(smtp, "lea@example.org") if "Here it is." in body(m))
        )
        attached = [p for p in answer.iter_attachments()]
        assert [(p.get_filename(), p.get_content()) for p in attached] == [
            ("manual.pdf", b"%PDF manual")
        ]
        # Anna corrects herself: a mail cannot be edited, so a short correction follows
        sandbox.edit(desk.anna, desk.channel, reply, "Here it is (version 2).")
        correction = await eventually(
            lambda: next(m for m in sent_to(smtp, "lea@example.org") if "correction" in body(m))
        )
        assert "version 2" in body(correction)
        await settle(desk.gateway)
        assert len([m for m in sent_to(smtp, "lea@example.org") if "Here it is." in body(m)]) == 1

        # the server refuses for good: operators see why
        smtp.reject.append("550 5.1.1 mailbox does not exist")
        sandbox.post(
            desk.anna, "Anything else?", channel=desk.channel, thread_ts=desk.thread_of("Lea")
        )
        await eventually(
            lambda: any("Not delivered" in t and "550" in t for t in desk.texts("Lea"))
        )


@pytest.mark.long
async def test_the_mailbox_going_away_and_coming_back(sqlite_url: str) -> None:
    async with email_desk(sqlite_url) as (desk, dovecot, _smtp):
        adapter = next(a for a in desk.gateway.adapters if a.name == "email")
        await eventually(lambda: adapter.connected.is_set())  # type: ignore[attr-defined]
        dovecot.stop()
        await eventually(lambda: not adapter.connected.is_set())  # type: ignore[attr-defined]
        dovecot.start()
        dovecot.append(mail("are you there?", sender="Max <max@example.org>").as_bytes())
        await eventually(lambda: desk.texts("Max") == ["My order is late\n\nare you there?"])


SMTP_INBOUND = """
[email]
address = "support@example.com"
inbound = "smtp"
listen_port = 0
spool_dir = "{spool}"
max_message_mb = 1
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
smtp_security = "none"
"""


async def test_mail_handed_over_smtp_is_taken_once_and_only_for_support(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with run_smtp() as smtp:
        extra = SMTP_INBOUND.format(spool=tmp_path / "spool", smtp_port=smtp.port)
        async with slack_desk(sqlite_url, extra=extra) as desk:
            email = next(a for a in desk.gateway.adapters if a.name == "email")
            port = email.listen_port  # type: ignore[attr-defined]

            async def send(message: EmailMessage, to: str = "support@example.com") -> None:
                await aiosmtplib.send(
                    message,
                    hostname="127.0.0.1",
                    port=port,
                    recipients=[to],
                    sender="pat@example.org",
                )

            first = mail("The bill is attached", sender="Pat <pat@example.org>")
            first.add_attachment(
                b"%PDF-1.4 bill", maintype="application", subtype="pdf", filename="bill.pdf"
            )
            await send(first)  # 250 only once committed: the conversation is stored
            assert len(await all_conversations(desk.gateway)) == 1
            shared = await eventually(lambda: [m for m in desk.replies("Pat") if m.get("files")])
            # the file came from the spool, where the mail was kept
            uploaded = desk.sandbox.file(shared[0]["files"][0]["id"])
            assert (uploaded.name, uploaded.data) == ("bill.pdf", b"%PDF-1.4 bill")
            assert len(list((tmp_path / "spool").glob("*.eml"))) == 1
            # the sending server tries again: the same mail is stored once
            await send(first)
            await settle(desk.gateway)
            assert [t for t in desk.texts("Pat") if "bill is attached" in t] != []
            assert len([t for t in desk.texts("Pat") if "bill is attached" in t]) == 1
            # it is no relay, and it takes no mail bigger than max_message_mb
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
                await send(mail("spam"), to="someone@elsewhere.org")
            big = mail("x" * (2 * 2**20))
            with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
                await send(big)
            assert refused.value.code == 552
            # the greeting went back to Pat through the outgoing server
            await eventually(lambda: sent_to(smtp, "pat@example.org"))
            status, body = await _readyz(desk.gateway.http.port)
            assert status == 200 and '"email": "ok"' in body


async def _readyz(port: int) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/readyz") as reply:
            return reply.status, await reply.text()
