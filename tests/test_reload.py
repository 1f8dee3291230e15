"""Hot reload: faq, texts and operators change while the gateway runs; a broken file
changes nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.app import Gateway, load
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
    finally:
        await gateway.stop()
