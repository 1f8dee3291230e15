"""Mail intake never stalls: a mail that cannot be taken in is set aside after a few
tries while the rest go on; a month's worth of real-world-shaped mail (charsets,
8-bit headers, broken MIME, reports, auto-replies) is all read and shown, and no
robot is answered. Against the real Dovecot, with Slack's sandbox as the workspace."""

from __future__ import annotations

import pytest
from sqlmodel import select

from gateway.events import Inbound, IngestResult
from storage import Message
from tests.mail_corpus import corpus
from tests.support import settle
from tests.telegram_support import eventually
from tests.test_email import email_desk, mail, sent_to


async def test_a_mail_that_cannot_be_taken_in_is_set_aside_and_the_rest_go_on(
    sqlite_url: str,
) -> None:
    async with email_desk(sqlite_url) as (desk, dovecot, smtp):
        core = desk.gateway.core
        real = core.ingest

        async def ingest(inbound: Inbound) -> IngestResult:
            if "POISON" in inbound.text:  # a bug that meets this one mail
                raise RuntimeError("a bug meets this mail")
            return await real(inbound)

        core.ingest = ingest  # type: ignore[method-assign]
        dovecot.append(mail("POISON here", sender="Vera <vera@example.org>").as_bytes())
        dovecot.append(mail("I am next", sender="Nick <nick@example.org>").as_bytes())
        # the mail behind it is not held while it is tried again
        await eventually(lambda: any("I am next" in t for t in desk.texts("Nick")))

        kept = await eventually(lambda: dovecot.messages("Quarantine"))
        assert len(kept) == 1 and b"POISON here" in kept[0]
        assert b"X-Gateway-Quarantine-Reason: RuntimeError" in kept[0]
        # out of the inbox (the copy is made first, then the original removed)
        await eventually(lambda: not [m for m in dovecot.messages() if b"POISON" in m])
        await eventually(lambda: any("could not be read" in t for t in desk.texts("Vera")))
        shared = await eventually(lambda: [m for m in desk.replies("Vera") if m.get("files")])
        original = desk.sandbox.file(shared[0]["files"][0]["id"]).data
        assert b"POISON here" in original  # operators have it whole
        await settle(desk.gateway)
        async with desk.gateway.repository.transaction() as tx:
            stored = (await tx.session.exec(select(Message).order_by(Message.id))).all()
        order = [m.text for m in stored if "I am next" in m.text or "could not be read" in m.text]
        assert "I am next" in order[0]  # taken while the other one waited for its tries
        assert sent_to(smtp, "vera@example.org") == []  # nothing answers it on its own
        assert sent_to(smtp, "nick@example.org")  # Nick was greeted as usual


@pytest.mark.long
async def test_a_months_mail_is_all_read_and_no_robot_is_answered(sqlite_url: str) -> None:
    samples = corpus()
    assert len(samples) >= 100
    async with email_desk(sqlite_url) as (desk, dovecot, smtp):
        for sample in samples:
            dovecot.append(sample.raw)
        dovecot.append(mail("After them all", sender="Last <last@example.org>").as_bytes())
        # every one read (or set aside), the last one too
        await eventually(lambda: all("\\Seen" in flags for _, flags in dovecot.flags()), limit=180)
        ready, _checks = await desk.gateway.readiness()
        assert ready
        # every answer by mail made (the workspace, at Slack's one post a second per
        # channel, takes minutes more to show them all: not waited for)
        await settle(desk.gateway, only=("email",))

        assert dovecot.messages("Quarantine") == []  # none of them is poison
        async with desk.gateway.repository.transaction() as tx:
            texts = [m.text or "" for m in (await tx.session.exec(select(Message))).all()]
        assert any("After them all" in text for text in texts)
        for sample in samples:
            if sample.shows:
                assert any(sample.shows in text for text in texts), sample.shows
        for sample in samples:
            if sample.kind == "robot":
                assert sent_to(smtp, sample.sender) == [], sample.sender
            elif sample.shows:
                assert sent_to(smtp, sample.sender), sample.sender  # customers are greeted
