"""A customer's history across conversations and channels, identities linked by an
admin, and full-text search, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.history import customer_history, link_customers, search
from storage.history_queries import fts5_query
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


async def test_the_card_and_history_show_earlier_conversations_on_every_channel(
    database_url: str,
) -> None:
    config = make_config(database_url, extra="[csat]\nask_comment = false\n")
    tg, slack = RecordingAdapter(), RecordingAdapter("slack", serves_workspace=False)
    async with running(config, tg, slack) as gw:
        first = (
            await gw.core.ingest(tg.customer_says("olga", "my parcel is lost"))
        ).conversation_id
        assert first is not None
        await operator_writes(gw, tg, "anna", first, "/tag vip")
        await operator_writes(gw, tg, "anna", first, "We found it")
        await operator_writes(gw, tg, "anna", first, "/close")
        await gw.core.ingest(tg.customer_says("olga", "4"))
        await settle(gw)
        # the same person writes from Slack: a new customer, until an admin links them
        second = (await gw.core.ingest(slack.customer_says("U0LGA", "hello again"))).conversation_id
        assert second is not None
        answer = await link_customers(gw.repository, "U0LGA", "@olga")
        assert "1 identity(ies) and 1 conversation(s) moved" in answer
        assert "already one customer" in await link_customers(gw.repository, "U0LGA", "olga")
        assert (await link_customers(gw.repository, "nobody", "olga")).startswith("no customer")

        # the card of the Slack conversation counts the Telegram one, with its tag and score
        async with gw.repository.transaction() as tx:
            conversation = await tx.conversation(second)
            assert conversation is not None
            card = await gw.core.relay.card(tx, conversation)
        assert card.earlier_count == 1
        assert card.earlier[0].startswith(f"#{first} ") and "CSAT 4" in card.earlier[0]
        assert "#vip" in card.earlier[0] and "telegram" in card.earlier[0]
        listed = await operator_writes(gw, tg, "anna", second, "/history")
        assert listed.ignored is None
        await settle(gw)
        notice = [d.outbound.text for d in tg.in_thread(second) if d.outbound.kind == "notice"]
        assert notice and "1 earlier conversation(s)" in notice[-1] and f"#{first}" in notice[-1]

        history = await customer_history(gw.repository, "@olga")
        assert history is not None
        assert {i.channel for i in history.identities} == {"telegram", "slack"}
        assert [c.id for c in history.conversations] == [second, first]
        assert await customer_history(gw.repository, "@nobody") is None


async def test_search_finds_words_not_syntax_and_follows_edits(database_url: str) -> None:
    config = make_config(database_url)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        sent = tg.customer_says("olga", "Моя посылка потерялась, order 1234", message_id="m1")
        opened = (await gw.core.ingest(sent)).conversation_id
        assert opened is not None
        await operator_writes(gw, tg, "anna", opened, "Looking for the parcel now")
        await gw.core.ingest(tg.customer_says("ivan", "invoice question"))
        await settle(gw)
        found = await search(gw.repository, "посылка", EPOCH, 10)
        assert [(h.conversation_id, h.direction) for h in found] == [(opened, "in")]
        assert "[посылка]" in found[0].snippet or "посылка" in found[0].snippet
        assert [h.direction for h in await search(gw.repository, "parcel", EPOCH, 10)] == ["out"]
        assert (
            await search(gw.repository, "parcel", datetime.now(UTC) + timedelta(days=1), 10) == []
        )
        # what a person types is never query syntax
        for hostile in ('"parcel" OR )', "NEAR(a b", "*", "'; DROP TABLE messages; --", ""):
            await search(gw.repository, hostile, EPOCH, 10)
        # an edit replaces the words the index knows
        edit = tg.customer_says("olga", "my parcel arrived, thanks", edit_of="m1")
        await gw.core.ingest(edit)
        assert await search(gw.repository, "потерялась", EPOCH, 10) == []
        assert [h.conversation_id for h in await search(gw.repository, "arrived", EPOCH, 10)] == [
            opened
        ]


def test_fts5_queries_quote_every_word() -> None:
    assert fts5_query('parcel "lost" OR x*') == '"parcel" "lost" "OR" "x"*'
    assert fts5_query("  ;; ") is None


async def test_the_history_search_and_link_commands(tmp_path: Path, sqlite_url: str) -> None:
    text = config_text(sqlite_url)
    tg = RecordingAdapter()
    from gateway.config import parse_config

    async with running(parse_config(text), tg) as gw:
        opened = (
            await gw.core.ingest(tg.customer_says("olga", "where is my parcel"))
        ).conversation_id
        await operator_writes(gw, tg, "anna", opened, "/tag vip")  # type: ignore[arg-type]
        await gw.core.ingest(tg.customer_says("olga2", "me again", name="Olga"))
        await settle(gw)
    path = tmp_path / "config.toml"
    path.write_text(text)
    shown = gateway_cli("history", "--config", str(path), "--customer", "@olga")
    assert shown.returncode == 0, shown.stderr
    assert "Customer 1: Olga" in shown.stdout and "#1 " in shown.stdout and "#vip" in shown.stdout
    missing = gateway_cli("history", "--config", str(path), "--customer", "@nobody")
    assert missing.returncode == 2 and "no customer '@nobody'" in missing.stderr
    linked = gateway_cli("link", "--config", str(path), "--customer", "olga2", "--into", "olga")
    assert linked.returncode == 0 and "1 conversation(s) moved" in linked.stdout
    found = gateway_cli("search", "parcel", "--config", str(path), "--since", "2020-01-01")
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith("#1 ") and "[parcel]" in found.stdout
    nothing = gateway_cli("search", "zebra", "--config", str(path))
    assert nothing.stdout.strip() == "Nothing found."
