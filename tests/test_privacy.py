"""Personal data: a customer's export for a subject access request, and the audit
trail of who did what (issue 38), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from gateway.config import parse_config
from gateway.privacy import export_customer
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
