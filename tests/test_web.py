"""The web chat over its real wire: sessions, the socket, the long poll, resuming,
and what it refuses (other sites, floods, forged tokens, hostile text)."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from storage.models import Direction
from tests.support import messages, operator_writes, settle
from tests.web_support import SITE, Browser, until, web_config, web_desk


async def test_a_visitor_talks_with_an_operator_live(tmp_path: Path, database_url: str) -> None:
    config = web_config(database_url, tmp_path, operators=("anna",))
    async with web_desk(config) as desk, aiohttp.ClientSession() as http:
        olga = Browser(desk.base, http)
        session = await olga.start(language="de-DE")
        assert session["look"]["title"] == "Support" and session["labels"]["send"] == "Senden"
        assert session["desk"]["open"] is True and session["visitor"]["email"] is None
        await olga.connect()
        cid = await olga.send("Wo ist meine Bestellung 7?")
        ack = await olga.wait(lambda f: f["t"] == "ack" and f["cid"] == cid, "the ack")
        # the operators see it in their workspace, as from a web visitor
        await settle(desk.gateway)
        mirrored = [
            d.outbound
            for d in desk.tg.deliveries
            if d.outbound.audience == "workspace" and d.outbound.message_id == ack["id"]
        ]
        assert mirrored and mirrored[0].text == "Wo ist meine Bestellung 7?"
        conversation_id = mirrored[0].conversation_id
        await operator_writes(desk.gateway, desk.tg, "anna", conversation_id, "Sie kommt morgen")
        reply = await olga.wait(lambda f: f.get("side") == "operator", "the reply")
        assert reply["text"] == "Sie kommt morgen" and reply["author"] == "Anna"
        # nothing of the operator but a name reaches the browser
        assert set(reply) == {
            "t", "id", "side", "author", "text", "files", "choices", "at", "edited", "deleted"
        }  # fmt: skip
        assert "anna" not in str(olga.frames).replace("Anna", "")
        # the automatic texts come as the desk's, unnamed
        assert any(f.get("side") == "bot" and f["author"] is None for f in olga.frames)
        await olga.disconnect()
        stored = await messages(desk.gateway, conversation_id)
        assert [m.direction for m in stored if m.direction in (Direction.IN, Direction.OUT)] == [
            Direction.IN,
            Direction.OUT,
        ]


async def test_a_reconnect_resumes_from_the_last_message_without_loss_or_twice(
    tmp_path: Path, database_url: str
) -> None:
    config = web_config(database_url, tmp_path, operators=("anna",))
    async with web_desk(config) as desk, aiohttp.ClientSession() as http:
        olga = Browser(desk.base, http)
        await olga.start()
        await olga.connect()
        cid = await olga.send("first")
        first = await olga.wait(lambda f: f["t"] == "ack", "the ack")
        await settle(desk.gateway)
        conversation_id = (await until(lambda: desk.tg.deliveries, "a delivery"))[
            0
        ].outbound.conversation_id
        await operator_writes(desk.gateway, desk.tg, "anna", conversation_id, "one")
        await olga.wait(lambda f: f.get("text") == "one", "the first reply")
        seen = max(olga.shown())
        welcome = next(f for f in olga.frames if f["t"] == "welcome")
        await olga.disconnect()
        # while the visitor is away: two replies, and the widget's resend of a
        # message whose ack it never got
        await operator_writes(desk.gateway, desk.tg, "anna", conversation_id, "two")
        await operator_writes(desk.gateway, desk.tg, "anna", conversation_id, "three")
        await settle(desk.gateway)
        before = olga.shown()
        olga.frames.clear()
        await olga.connect(after=seen, since=welcome["now"])
        again = await olga.send("first", cid=cid)
        ack = await olga.wait(lambda f: f["t"] == "ack" and f["cid"] == again, "the second ack")
        assert ack["id"] == first["id"]  # the same message, not a second one
        caught_up = [f["text"] for f in olga.frames if f["t"] == "msg" and f["side"] != "customer"]
        assert caught_up == ["two", "three"]  # what was missed, once each, in order
        both = {**before, **olga.shown()}
        assert [both[i]["text"] for i in sorted(both) if both[i]["side"] == "operator"] == [
            "one",
            "two",
            "three",
        ]
        stored = await messages(desk.gateway, conversation_id)
        assert [m.text for m in stored if m.direction == Direction.IN] == ["first"]
        # a reload (a new widget, no cursor) shows the whole history
        reload = Browser(desk.base, http, token=olga.token)
        await reload.start()
        await reload.connect()
        assert reload.replies() == ["one", "two", "three"]
        await olga.disconnect()
        await reload.disconnect()
