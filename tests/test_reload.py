"""Hot reload: faq, texts and operators change while the gateway runs; a broken file
changes nothing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.plugins import load
from tests.clock import ManualClock
from tests.support import RecordingAdapter, config_text, migrate, settle
from tests.telegram_support import eventually

FAQ = """
[faq]
when = "always_first"

[[faq.entries]]
id = "delivery_time"
questions = ["How long does delivery take?"]
answer = "{answer}"
"""


def write(
    path: Path, database_url: str, *, answer: str, operators: tuple[str, ...], extra: str = ""
) -> None:
    text = config_text(database_url, operators, extra=FAQ.format(answer=answer) + extra)
    path.write_text(text.replace("http_port = 0", "http_port = 0\nreload_seconds = 0.05"))


async def test_a_valid_change_applies_and_an_invalid_one_is_refused(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.toml"
    write(path, sqlite_url, answer="Two days.", operators=("anna",))
    await migrate(sqlite_url)
    tg = RecordingAdapter()
    gateway = Gateway(load(path, {}), plugins={}, adapters=[tg], serve_http=False)
    await gateway.start()
    caplog.set_level(logging.INFO)
    try:
        await gateway.core.ingest(tg.customer_says("olga", "How long does delivery take?"))
        await settle(gateway)
        assert tg.to_customer("chat-olga")[0].startswith("Two days.")

        # the admin edits the answer and adds an operator: applied, and logged
        write(path, sqlite_url, answer="Three days now.", operators=("anna", "carol"))
        await eventually(lambda: "carol" in [op.id for op in gateway.config.operators])
        assert "operators +carol" in caplog.text and "faq ~delivery_time" in caplog.text
        async with gateway.repository.transaction() as tx:
            trail = await tx.audit_events(datetime(2020, 1, 1, tzinfo=UTC))
        assert [(e.actor, e.action) for e in trail] == [("config", "reload")]
        assert "operators +carol" in trail[0].detail
        await gateway.core.ingest(tg.customer_says("ivan", "How long does delivery take?"))
        await settle(gateway)
        assert tg.to_customer("chat-ivan")[0].startswith("Three days now.")
        assert gateway.live.operators == gateway.config.operators  # adapters see it too
        assert gateway.core.operator_for("telegram", "1002") is not None  # carol acts

        # a broken file: the errors are logged with their keys, nothing changes
        path.write_text(path.read_text().replace('id = "carol"', 'id = "Carol Bad"'))
        await eventually(lambda: "was not applied" in caplog.text)
        assert "operators[1].id" in caplog.text
        assert [op.id for op in gateway.config.operators] == ["anna", "carol"]

        # a change that needs a restart says so, and the rest still applies
        write(
            path,
            sqlite_url,
            answer="Four days.",
            operators=("anna", "carol"),
        )
        text = path.read_text().replace("max_attempts = 5", "max_attempts = 7")
        path.write_text(text)
        await eventually(lambda: "takes a restart" in caplog.text)
        assert "outbox" in caplog.text
        await eventually(lambda: "Four days." in str(gateway.config.core.faq.entries[0].answer))
        assert gateway.config.outbox.max_attempts == 5

        # a saved reply added to the file is there for the next /r
        write(
            path,
            sqlite_url,
            answer="Four days.",
            operators=("anna", "carol"),
            extra='[[replies]]\nname = "thanks"\ntext = "Thanks, {customer}!"\n',
        )
        await eventually(lambda: gateway.config.core.saved_reply("thanks") is not None)
        assert "replies (1)" in caplog.text
    finally:
        await gateway.stop()


async def test_new_hours_apply_at_once_and_move_the_deadlines(
    tmp_path: Path, sqlite_url: str, clock: ManualClock
) -> None:
    path = tmp_path / "config.toml"
    hours = '[hours]\nschedule = {{ mon-fri = "{open}-18:00" }}\n'
    write(path, sqlite_url, answer="-", operators=("anna",), extra=hours.format(open="09:00"))
    await migrate(sqlite_url)
    tg = RecordingAdapter()
    clock.set(datetime(2026, 11, 28, 12, tzinfo=UTC))  # Saturday: closed
    gateway = Gateway(load(path, {}), plugins={}, adapters=[tg], serve_http=False)
    await gateway.start()
    try:
        result = await gateway.core.ingest(tg.customer_says("olga", "Hello"))
        async with gateway.repository.transaction() as tx:
            due = await tx.deadlines(result.conversation_id)
        assert due["route"].due_at == datetime(2026, 11, 30, 9, tzinfo=UTC)
        assert due["sla_breach"].due_at == datetime(2026, 11, 30, 9, 30, tzinfo=UTC)

        # the admin opens an hour earlier: the waiting conversation follows
        write(path, sqlite_url, answer="-", operators=("anna",), extra=hours.format(open="08:00"))
        await eventually(lambda: "08:00" in str(gateway.config.core.hours.schedule))
        assert gateway.config.core.schedule.is_open(datetime(2026, 11, 30, 8, tzinfo=UTC))

        async def moved() -> bool:
            async with gateway.repository.transaction() as tx:
                due = await tx.deadlines(result.conversation_id)
            return due["route"].due_at == datetime(2026, 11, 30, 8, tzinfo=UTC) and due[
                "sla_breach"
            ].due_at == datetime(2026, 11, 30, 8, 30, tzinfo=UTC)

        await eventually(moved)
    finally:
        await gateway.stop()
