"""Personal data: a customer's export for a subject access request, and the audit
trail of who did what (issue 38), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import select

from gateway.config import parse_config
from gateway.history import search
from gateway.privacy import erase_customer, export_customer
from gateway.redaction import redact
from gateway.report import load_report
from gateway.status import collect_status, render_status
from storage import OutboxRow
from storage.history_queries import Hit
from tests.clock import ManualClock
from tests.support import (
    RecordingAdapter,
    config_text,
    gateway_cli,
    make_config,
    operator_writes,
    running,
    settle,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def test_an_export_holds_everything_about_the_customer_and_is_audited(
    database_url: str,
) -> None:
    config = make_config(database_url, extra="[csat]\nask_comment = false\n")
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        opened = (
            await gw.core.ingest(tg.customer_says("olga", "my card ends 4242"))
        ).conversation_id
        assert opened is not None
        await operator_writes(gw, tg, "anna", opened, "/note she ordered twice")
        await operator_writes(gw, tg, "anna", opened, "We refunded it")
        await operator_writes(gw, tg, "anna", opened, "/tag refund")
        await operator_writes(gw, tg, "anna", opened, "/close")
        await gw.core.ingest(tg.customer_says("olga", "5"))
        await gw.core.ingest(tg.customer_says("ivan", "not olga's"))
        await settle(gw)
        names = {op.id: op.name for op in gw.config.operators}
        data = await export_customer(gw.repository, "@olga", names)
        assert data is not None
        assert data["customer"]["name"] == "Olga"
        assert data["identities"] == [{"channel": "telegram", "id": "olga", "username": "olga"}]
        [conversation] = data["conversations"]
        assert (conversation["tags"], conversation["rating"]) == (["refund"], 5)
        kinds = [(m["kind"], m["text"]) for m in conversation["messages"]]
        assert ("from the customer", "my card ends 4242") in kinds
        assert ("internal note", "she ordered twice") in kinds
        assert ("to the customer", "We refunded it") in kinds
        assert all("not olga" not in text for _, text in kinds)  # another customer's
        assert not any(k == "system" or "Closed by" in t for k, t in kinds)
        assert await export_customer(gw.repository, "@nobody", names) is None

        async with gw.repository.transaction() as tx:
            trail = [(e.actor, e.action, e.detail) for e in await tx.audit_events(EPOCH)]
        assert ("anna", "note", "") in trail  # the note's words are not in the trail
        assert ("anna", "tag", "refund") in trail and ("anna", "close", "") in trail
        assert any(action == "export" and actor.startswith("admin") for actor, action, _ in trail)


async def test_the_export_and_audit_commands(tmp_path: Path, sqlite_url: str) -> None:
    text = config_text(sqlite_url)
    tg = RecordingAdapter()
    async with running(parse_config(text), tg) as gw:
        opened = (await gw.core.ingest(tg.customer_says("olga", "hello"))).conversation_id
        await operator_writes(gw, tg, "anna", opened, "/priority urgent")  # type: ignore[arg-type]
        await settle(gw)
    path = tmp_path / "config.toml"
    path.write_text(text)
    out = tmp_path / "olga.json"
    exported = gateway_cli(
        "export", "--config", str(path), "--customer", "@olga", "--out", str(out)
    )
    assert exported.returncode == 0, exported.stderr
    assert "1 conversation(s)" in exported.stdout
    assert json.loads(out.read_text())["customer"]["name"] == "Olga"
    missing = gateway_cli("export", "--config", str(path), "--customer", "x", "--out", str(out))
    assert missing.returncode == 2 and "no customer 'x'" in missing.stderr
    trail = gateway_cli("audit", "--config", str(path), "--since", "2020-01-01")
    assert trail.returncode == 0, trail.stderr
    lines = trail.stdout.splitlines()
    assert any("anna" in line and "priority" in line and "urgent" in line for line in lines)
    assert any("export" in line and "admin" in line for line in lines)
    only_anna = gateway_cli(
        "audit", "--config", str(path), "--actor", "anna", "--since", "2020-01-01"
    )
    assert "export" not in only_anna.stdout
    asked = gateway_cli("erase", "--config", str(path), "--customer", "@olga")
    assert asked.returncode == 0 and "would erase (run again with --yes)" in asked.stdout
    erased = gateway_cli(
        "erase", "--config", str(path), "--customer", "@olga", "--yes", "--wait", "0"
    )
    assert erased.returncode == 0 and "customer 1 erased:" in erased.stdout
    assert "telegram thread T1" in erased.stdout  # the workspace copy, queued for removal
    assert "still queued for telegram: conversation #1" in erased.stdout  # no gateway runs
    gone = gateway_cli("erase", "--config", str(path), "--customer", "@olga", "--yes")
    assert gone.returncode == 2 and "no customer '@olga'" in gone.stderr
    again = gateway_cli("erase", "--config", str(path), "--customer", "1", "--yes")
    assert again.returncode == 0 and "erased before" in again.stdout


async def test_an_erase_leaves_no_personal_data_and_reports_still_add_up(
    database_url: str,
) -> None:
    config = make_config(database_url, extra="[csat]\nask_comment = true\n")
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        opened = (
            await gw.core.ingest(tg.customer_says("olga", "I live at 5 Elm St"))
        ).conversation_id
        assert opened is not None
        await operator_writes(gw, tg, "anna", opened, "/note Olga Petrova, VIP")
        await operator_writes(gw, tg, "anna", opened, "Thanks Olga, sent to 5 Elm St")
        await operator_writes(gw, tg, "anna", opened, "/close")
        await gw.core.ingest(tg.customer_says("olga", "4"))
        await gw.core.ingest(tg.customer_says("olga", "call me at +1 555 0100"))
        other = (await gw.core.ingest(tg.customer_says("olga", "one more thing"))).conversation_id
        await gw.core.ingest(tg.customer_says("ivan", "Ivan's own words"))
        await settle(gw)
        window = {"since": EPOCH, "until": datetime(2100, 1, 1, tzinfo=UTC), "by": "operator"}
        before = await load_report(gw.repository, config, **window)  # type: ignore[arg-type]

        dry = await erase_customer(gw.repository, "@olga", yes=False)
        assert dry is not None and not dry.done and dry.counts["identities"] == 1
        assert (await export_customer(gw.repository, "@olga", {})) is not None  # nothing gone

        done = await erase_customer(gw.repository, "@olga", yes=True)
        assert done is not None and done.done
        assert done.counts["conversations"] == len({opened, other})
        assert any("thread" in line for line in done.lines())  # the copies, queued
        # nothing that identifies her, or that anyone wrote to her, is left
        assert await erase_customer(gw.repository, "@olga", yes=True) is None
        async with gw.repository.transaction() as tx:
            texts = [m.text for c in (opened, other) for m in await tx.messages(c)]
            customer = await tx.customer(done.customer_id)
            conversation = await tx.conversation(opened)
            refs = [
                r
                for m in await tx.messages(opened)
                for side in ("customer", "workspace")
                for r in await tx.refs(m.id or 0, "telegram", side)
            ]
        assert set(texts) == {""}
        assert customer.display_name.startswith("(erased") and customer.language is None
        assert conversation is not None and conversation.csat_comment is None
        assert conversation.chat_id.startswith("erased:") and conversation.csat_score == 4
        assert refs == []
        async with gw.repository.transaction() as tx:
            payloads = (await tx.session.exec(select(OutboxRow.payload))).all()
        assert payloads and not any("Elm" in json.dumps(p) for p in payloads)
        assert any("Ivan's own words" in json.dumps(p) for p in payloads)  # not his
        hits: list[Hit] = []
        for words in ("Elm", "Petrova", "555"):
            hits += await search(gw.repository, words, EPOCH, 10)
        assert hits == []
        assert [h.customer_name for h in await search(gw.repository, "Ivan", EPOCH, 10)] == ["Ivan"]
        # the report's figures are the same
        after = await load_report(gw.repository, config, **window)  # type: ignore[arg-type]
        assert (after.total.opened, after.total.resolved, after.total.csat) == (
            before.total.opened,
            before.total.resolved,
            before.total.csat,
        )
        assert after.comments == []
        # again by number: already done, and said so
        again = await erase_customer(gw.repository, str(done.customer_id), yes=True)
        assert again is not None and again.already
        async with gw.repository.transaction() as tx:
            trail = [(e.action, e.customer_id) for e in await tx.audit_events(EPOCH)]
        assert trail.count(("erase", done.customer_id)) == 1


async def test_retention_empties_old_words_and_files_and_status_says_what_is_due(
    database_url: str, clock: ManualClock
) -> None:
    extra = "[privacy]\nkeep_messages_days = 30\nkeep_files_days = 7\n"
    config = make_config(database_url, extra=extra)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        old = (await gw.core.ingest(tg.customer_says("olga", "my old address"))).conversation_id
        await operator_writes(gw, tg, "anna", old, "Noted")  # type: ignore[arg-type]
        await operator_writes(gw, tg, "anna", old, "/close")  # type: ignore[arg-type]
        clock.advance(days=20)
        recent = await gw.core.ingest(tg.customer_says("ivan", "still open, 20 days on"))
        recent_id = recent.conversation_id
        assert recent_id is not None
        await settle(gw)
        clock.advance(days=11)  # Olga's words are 31 days old, Ivan's 11
        status = await collect_status(gw.repository, gw.config)
        assert status.retention == (30, 7)
        assert status.purgeable[0] >= 2  # her message, the reply (and automatic texts)
        assert "Retention: messages 30 days, files 7 days" in render_status(status)
        before = await load_report(
            gw.repository, config, since=EPOCH, until=clock.now(), by="operator"
        )
        await gw.tick()
        async with gw.repository.transaction() as tx:
            assert {m.text for m in await tx.messages(old)} == {""}  # type: ignore[arg-type]
            kept = [m.text for m in await tx.messages(recent_id)]
        assert "still open, 20 days on" in kept
        assert (await collect_status(gw.repository, gw.config)).purgeable == (0, 0)
        after = await load_report(
            gw.repository, config, since=EPOCH, until=clock.now(), by="operator"
        )
        assert (after.total.opened, after.total.resolved) == (
            before.total.opened,
            before.total.resolved,
        )


def test_card_numbers_are_masked_only_when_they_are_card_numbers() -> None:
    rules = ("card",)
    shown = redact("pay with 4242 4242 4242 4242, exp 12/27", rules)
    assert shown.text == "pay with •••• 4242, exp 12/27" and shown.card
    assert redact("card 4000-0566-5566-5556 ok", rules).text == "card •••• 5556 ok"
    # an order number of as many digits that fails the Luhn check is left alone
    assert not redact("order 1234567812345678", rules).changed
    assert not redact("call +380 44 123 4567", rules).changed
    custom = redact("SSN 123-45-6789 and card 4242424242424242", ("card", r"\d{3}-\d{2}-\d{4}"))
    assert custom.text == "SSN [hidden] and card •••• 4242"
    assert not redact("4242424242424242", ()).changed
