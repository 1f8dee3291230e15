"""The web chat over its real wire: sessions, the socket, the long poll, resuming,
and what it refuses (other sites, floods, forged tokens, hostile text)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from adapters.web.files import clean_name
from adapters.web.visitors import user_hash
from gateway.config import parse_config
from gateway.events import Attachment, Inbound, Sender
from gateway.plugins import channel_models
from gateway.privacy import erase_customer, export_customer
from storage.models import Direction
from tests.support import (
    all_conversations,
    gateway_cli,
    messages,
    operator_tg,
    operator_writes,
    settle,
)
from tests.web_support import SITE, Browser, until, web_config, web_config_text, web_desk


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
        # her typing shows in the topic, once for a burst of keystrokes
        assert olga.socket is not None
        for _ in range(3):
            await olga.socket.send_json({"t": "typing"})
        await until(lambda: desk.tg.typed, "typing in the topic")
        await olga.socket.send_json({"t": "ping"})
        await olga.wait(lambda f: f["t"] == "pong", "the pong")
        assert desk.tg.typed == [f"T{conversation_id}"]
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


async def test_the_long_poll_carries_the_same_conversation(
    tmp_path: Path, database_url: str
) -> None:
    """Where a WebSocket cannot get through (a proxy that drops upgrades), the widget
    polls: sends are POSTs acknowledged after commit, and a poll waits for a reply."""
    config = web_config(database_url, tmp_path, operators=("anna",))
    async with web_desk(config) as desk, aiohttp.ClientSession() as http:
        olga = Browser(desk.base, http)
        await olga.start()
        status, first = await olga.call("poll", {"token": olga.token, "after": 0, "wait": False})
        assert status == 200 and first["frames"] == []
        status, ack = await olga.call("send", {"token": olga.token, "cid": "p1", "text": "hi"})
        assert status == 200 and ack["t"] == "ack" and ack["cid"] == "p1"
        status, again = await olga.call("send", {"token": olga.token, "cid": "p1", "text": "hi"})
        assert again["id"] == ack["id"]  # a resend is the same message
        await settle(desk.gateway)
        status, caught = await olga.call("poll", {"token": olga.token, "after": 0})
        after = max(f["id"] for f in caught["frames"])
        assert [f["text"] for f in caught["frames"] if f["side"] == "customer"] == ["hi"]
        conversation_id = desk.tg.deliveries[0].outbound.conversation_id
        waiting = asyncio.create_task(
            olga.call("poll", {"token": olga.token, "after": after, "since": caught["now"]})
        )
        await until(lambda: desk.web.hub.present(olga.token.rpartition(".")[0]), "the poll")
        await operator_writes(desk.gateway, desk.tg, "anna", conversation_id, "hello from Anna")
        status, answer = await waiting
        assert [f["text"] for f in answer["frames"]] == ["hello from Anna"]


async def test_other_sites_are_refused_and_allowed_ones_get_cors(
    tmp_path: Path, sqlite_url: str
) -> None:
    config = web_config(sqlite_url, tmp_path)
    async with web_desk(config) as desk, aiohttp.ClientSession() as http:
        evil = Browser(desk.base, http, origin="https://evil.example.net")
        status, answer = await evil.call("session", {})
        assert status == 403 and answer["code"] == "origin"
        async with http.post(f"{desk.base}/web/session", json={}) as reply:  # no Origin at all
            assert reply.status == 403
        # the WebSocket handshake is refused before any upgrade
        try:
            await http.ws_connect(
                f"{desk.base}/web/socket", headers={"Origin": "https://evil.example.net"}
            )
            raise AssertionError("the socket opened for another site")
        except aiohttp.WSServerHandshakeError as refused:
            assert refused.status == 403
        # a token is no pass for another site either
        olga = Browser(desk.base, http)
        await olga.start()
        status, _ = await Browser(desk.base, http, origin="https://evil.example.net",
                                  token=olga.token).call("poll", {"token": olga.token})  # fmt: skip
        assert status == 403
        async with http.options(
            f"{desk.base}/web/send",
            headers={"Origin": SITE, "Access-Control-Request-Method": "POST"},
        ) as preflight:
            assert preflight.status == 204
            assert preflight.headers["Access-Control-Allow-Origin"] == SITE
        async with http.post(
            f"{desk.base}/web/session", json={}, headers={"Origin": SITE}
        ) as reply:
            assert reply.headers["Access-Control-Allow-Origin"] == SITE
        async with http.get(f"{desk.base}/widget.js") as script:
            assert script.status == 200 and "SupportChat" in await script.text()


async def test_floods_are_slowed_per_visitor_and_per_address(
    tmp_path: Path, sqlite_url: str
) -> None:
    config = web_config(
        sqlite_url, tmp_path, web="messages_per_minute = 3\nvisitors_per_hour = 2\n"
    )
    async with web_desk(config) as desk, aiohttp.ClientSession() as http:
        olga = Browser(desk.base, http)
        await olga.start()
        await olga.connect()
        for n in range(5):
            await olga.send(f"spam {n}", cid=f"s{n}")
        await olga.wait(lambda f: f.get("cid") == "s4" and f["t"] in ("ack", "error"), "s4")
        await until(lambda: len([f for f in olga.frames if f["t"] in ("ack", "error")]) == 5, "5")
        acks = [f["cid"] for f in olga.frames if f["t"] == "ack"]
        refused = [f for f in olga.frames if f["t"] == "error"]
        assert acks == ["s0", "s1", "s2"]
        assert [f["cid"] for f in refused] == ["s3", "s4"]
        assert all(f["code"] == "rate" and f["retry_after"] > 0 for f in refused)
        await olga.disconnect()
        # new visitors from one address: two an hour here, then 429 with Retry-After
        await Browser(desk.base, http).start()
        status, answer = await Browser(desk.base, http).call("session", {})
        assert status == 429 and answer["code"] == "rate"
        # a known visitor coming back is not a new one
        assert (await Browser(desk.base, http, token=olga.token).start())["token"] == olga.token


HOSTILE = (
    '<script>alert("x")</script><img src=x onerror=alert(1)> '
    "{{7*7}} ${7*7} \u202eevil\u202c \x00 ' OR 1=1 -- "
)


async def test_hostile_text_is_kept_as_text_and_bad_frames_are_answered(
    tmp_path: Path, sqlite_url: str
) -> None:
    config = web_config(sqlite_url, tmp_path, web="max_text_chars = 200\n")
    async with web_desk(config) as desk, aiohttp.ClientSession() as http:
        olga = Browser(desk.base, http)
        await olga.start(name="<b>Olga</b>")
        await olga.connect()
        assert olga.socket is not None
        await olga.socket.send_str("not json")
        await olga.socket.send_bytes(b"\x00\x01")
        await olga.socket.send_json({"t": "launch-missiles"})
        await olga.socket.send_json(["a", "list"])
        await olga.send("x" * 201, cid="long")
        await olga.socket.send_json({"t": "send", "cid": "../../etc", "text": "hi"})
        await olga.send("", cid="empty")
        cid = await olga.send(HOSTILE)
        ack = await olga.wait(lambda f: f["t"] == "ack" and f["cid"] == cid, "the ack")
        errors = [f for f in olga.frames if f["t"] == "error"]
        assert len(errors) == 7 and {f["code"] for f in errors} >= {"frame", "too_long", "empty"}
        assert next(f for f in errors if f.get("cid") == "long")["limit"] == 200
        await settle(desk.gateway)
        conversation_id = next(
            d.outbound.conversation_id for d in desk.tg.deliveries if d.outbound.message_id
        )
        stored = [m for m in await messages(desk.gateway, conversation_id) if m.id == ack["id"]]
        # stored as it was written (the NUL aside, which no database keeps), never escaped
        assert stored[0].text.startswith('<script>alert("x")</script><img src=x')
        echoed = olga.shown()[ack["id"]]
        assert echoed["text"] == stored[0].text
        await olga.disconnect()


async def test_tokens_open_one_chat_only_and_can_be_revoked(
    tmp_path: Path, sqlite_url: str
) -> None:
    config = web_config(sqlite_url, tmp_path)
    async with web_desk(config) as desk, aiohttp.ClientSession() as http:
        olga, petro = Browser(desk.base, http), Browser(desk.base, http)
        await olga.start()
        await petro.start()
        assert olga.token and petro.token and olga.token != petro.token
        olga_chat = olga.token.rpartition(".")[0]
        # a forged token: Olga's chat id with a made-up secret
        status, answer = await petro.call("poll", {"token": f"{olga_chat}.guess", "wait": False})
        assert status == 401 and answer["code"] == "token"
        forged = Browser(desk.base, http, token=f"{olga_chat}.guess")
        fresh = (await forged.start())["token"]
        assert not fresh.startswith(olga_chat)  # a new visitor instead
        # revoked: the token stops working; the chat's history stays
        assert await desk.web.chat.visitors.revoke(olga_chat)  # type: ignore[union-attr]
        status, _ = await olga.call("poll", {"token": olga.token, "wait": False})
        assert status == 401


async def test_a_signed_in_user_is_known_by_the_sites_signature_only(
    tmp_path: Path, sqlite_url: str
) -> None:
    """The site signs its user's id (HMAC, as Intercom's user_hash): with it, the
    user's chat and history open on any device; without it, or with another id,
    they do not, and a signed-out page starts an anonymous chat."""
    config = web_config(sqlite_url, tmp_path, operators=("anna",), web='identity_secret = "k3y"\n')
    async with web_desk(config) as desk, aiohttp.ClientSession() as http:
        laptop = Browser(desk.base, http)
        session = await laptop.start(user="42", user_hash=user_hash("k3y", "42"), name="Olga")
        assert session["visitor"] == {"name": "Olga", "email": None, "signed_in": True}
        await laptop.connect()
        await laptop.send("my order")
        await laptop.wait(lambda f: f["t"] == "ack", "the ack")
        await laptop.disconnect()
        phone = Browser(desk.base, http)
        await phone.start(user="42", user_hash=user_hash("k3y", "42"))
        await phone.connect()
        assert [m["text"] for m in phone.shown().values() if m["side"] == "customer"] == [
            "my order"
        ]
        await phone.disconnect()
        # someone else claiming to be 42, or signing 43 with 42's signature
        for body in (
            {"user": "42", "user_hash": "0" * 64},
            {"user": "43", "user_hash": user_hash("k3y", "42")},
            {"user": "42"},
        ):
            status, answer = await Browser(desk.base, http).call("session", body)
            assert status == 403 and answer["code"] == "identity", body
        # the laptop's user signed out: its token no longer opens 42's chat
        signed_out = Browser(desk.base, http, token=laptop.token)
        await signed_out.start()
        assert signed_out.token != laptop.token and signed_out.token.startswith("v-")
        await signed_out.connect()
        assert signed_out.shown() == {}
        await signed_out.disconnect()


async def test_only_signed_in_users_chat_where_the_site_requires_it(
    tmp_path: Path, sqlite_url: str
) -> None:
    config = web_config(
        sqlite_url, tmp_path, web='identity_secret = "k3y"\nrequire_identity = true\n'
    )
    async with web_desk(config) as desk, aiohttp.ClientSession() as http:
        status, answer = await Browser(desk.base, http).call("session", {})
        assert status == 403 and answer["code"] == "identity"
        signed = await Browser(desk.base, http).start(user="7", user_hash=user_hash("k3y", "7"))
        assert signed["visitor"]["signed_in"] is True


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


async def upload(
    browser: Browser, name: str, mime: str, data: bytes
) -> tuple[int, dict[str, object]]:
    form = aiohttp.FormData()
    form.add_field("token", browser.token or "")
    form.add_field("file", data, filename=name, content_type=mime)
    async with browser.http.post(
        f"{browser.base}/web/upload", data=form, headers={"Origin": browser.origin}
    ) as reply:
        return reply.status, await reply.json()


async def test_files_go_both_ways_checked_and_to_their_own_visitor_only(
    tmp_path: Path, sqlite_url: str
) -> None:
    config = web_config(sqlite_url, tmp_path, operators=("anna",), web="max_file_mb = 0.01\n")
    async with web_desk(config) as desk, aiohttp.ClientSession() as http:
        olga, petro = Browser(desk.base, http), Browser(desk.base, http)
        await olga.start()
        await petro.start()
        # refused: too big, a type not allowed, a "picture" that is not one
        status, answer = await upload(olga, "big.png", "image/png", PNG + b"\0" * 20_000)
        assert status == 413 and answer["code"] == "file_size"
        status, answer = await upload(olga, "run.exe", "application/x-msdownload", b"MZ\x90")
        assert status == 415 and answer["code"] == "file_type"
        status, answer = await upload(olga, "cat.png", "image/png", b"<svg onload=alert(1)>")
        assert status == 415
        status, answer = await upload(olga, "receipt.png", "image/png", PNG)
        assert status == 200 and answer["name"] == "receipt.png"
        assert clean_name("C:\\fakepath\\../\x07re\u202eceipt.png") == "receipt.png"
        key = answer["key"]
        # Petro cannot send Olga's file as his
        await petro.connect()
        await petro.send("look", files=[key])
        refused = await petro.wait(lambda f: f["t"] == "error", "the refusal")
        assert refused["code"] == "file"
        await petro.disconnect()
        await olga.connect()
        cid = await olga.send("my receipt", files=[key])
        ack = await olga.wait(lambda f: f["t"] == "ack" and f["cid"] == cid, "the ack")
        await settle(desk.gateway)
        mirrored = next(
            d.outbound for d in desk.tg.deliveries if d.outbound.message_id == ack["id"]
        )
        (attachment,) = mirrored.attachments
        assert (attachment.origin, attachment.name, attachment.mime) == (
            "web",
            "receipt.png",
            "image/png",
        )
        assert desk.tg.host is not None
        assert (await desk.tg.host.fetch(attachment)).data == PNG  # what Telegram uploads
        # an operator's file reaches the visitor through the gateway
        desk.tg.files["F1"] = b"%PDF-1.4 terms"
        operator = operator_tg(desk.gateway.config, "anna")
        await desk.gateway.core.ingest(
            Inbound(
                channel="telegram",
                event_id="op-file",
                chat_id="group",
                sender=Sender(external_id=operator, display_name="Anna"),
                text="our terms",
                attachments=(
                    Attachment("document", "F1", "terms.pdf", "application/pdf", 14, "telegram"),
                ),
                message_id="w-file",
                workspace_thread=f"T{mirrored.conversation_id}",
            )
        )
        sent = await olga.wait(lambda f: f.get("text") == "our terms", "the operator's file")
        assert sent["files"] == [
            {"n": 0, "name": "terms.pdf", "mime": "application/pdf", "size": 14, "image": False}
        ]
        for browser, expected in ((olga, 200), (petro, 404)):
            async with http.post(
                f"{desk.base}/web/file",
                json={"token": browser.token, "id": sent["id"], "n": 0},
                headers={"Origin": SITE},
            ) as reply:
                assert reply.status == expected
                if expected == 200:
                    assert await reply.read() == b"%PDF-1.4 terms"
                    assert reply.headers["X-Content-Type-Options"] == "nosniff"
        await olga.disconnect()


async def test_an_admin_signs_a_visitor_out_and_export_and_erase_know_them(
    tmp_path: Path, sqlite_url: str
) -> None:
    text = web_config_text(sqlite_url, tmp_path, operators=("anna",))
    path = tmp_path / "config.toml"
    path.write_text(text)
    async with web_desk(parse_config(text, channel_models())) as desk:
        async with aiohttp.ClientSession() as http:
            olga = Browser(desk.base, http)
            await olga.start()
            await olga.connect()
            await olga.send("hello")
            await olga.wait(lambda f: f["t"] == "ack", "the ack")
            await olga.socket.send_json({"t": "contact", "email": "olga@example.org"})  # type: ignore[union-attr]
            await olga.wait(lambda f: f["t"] == "contact", "the thanks")
            await olga.disconnect()
            chat = (olga.token or "").rpartition(".")[0]
            exported = await export_customer(desk.gateway.repository, chat, {})
            assert exported is not None
            assert exported["kept_by_channels"][0]["email"] == "olga@example.org"
            assert "tokens" not in exported["kept_by_channels"][0]
            # the admin signs her out: her token opens nothing (once the running
            # gateway's trust in it lapses), her history stays
            revoked = await asyncio.to_thread(
                gateway_cli, "revoke", "--config", str(path), "--customer", chat
            )
            assert revoked.returncode == 0 and "1 web chat session(s) ended" in revoked.stdout
            desk.web.chat.visitors._trusted.clear()  # type: ignore[union-attr]
            status, _ = await olga.call("poll", {"token": olga.token, "wait": False})
            assert status == 401
            assert (await all_conversations(desk.gateway))[0].chat_id == chat
            # an erase forgets what the chat kept, with the rest
            await Browser(desk.base, http, token=None).start()
            assert (await erase_customer(desk.gateway.repository, chat, yes=True)) is not None
            async with desk.gateway.repository.transaction() as tx:
                assert await tx.chat_state("web", chat) is None


async def test_a_stopping_gateway_ends_its_connections_and_turns_new_ones_away(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Sockets are closed as "going away" and a waiting long poll answers at once, so
    widgets reconnect (to this process when back, or another); calls made meanwhile
    are told to come back, none left hanging on a server shutting down."""
    config = web_config(sqlite_url, tmp_path)
    async with aiohttp.ClientSession() as http:
        async with web_desk(config) as desk:
            olga, petro = Browser(desk.base, http), Browser(desk.base, http)
            await olga.start()
            await petro.start()
            await olga.connect()
            poll = asyncio.create_task(petro.call("poll", {"token": petro.token, "after": 1}))
            await until(lambda: desk.web.hub.connections() == 2, "both connected")
            await desk.web.stop()
            status, answer = await poll
            assert status == 200 and answer["frames"] == []
            assert olga.socket is not None
            await until(lambda: olga.socket is not None and olga.socket.closed, "the close")
            assert olga.socket.close_code == 1001
            status, answer = await petro.call("poll", {"token": petro.token, "after": 1})
            assert status == 503 and answer["retry_after"] > 0


async def test_a_reply_another_process_delivered_reaches_a_socket_here_once(
    tmp_path: Path, postgres_url: str
) -> None:
    """Several processes on PostgreSQL: the one delivering a reply may not hold the
    visitor's socket. Here this process's web deliveries are stopped, so only
    reading what was delivered elsewhere (``fanout``) can bring the reply."""
    config = web_config(postgres_url, tmp_path, operators=("anna",))
    async with web_desk(config) as desk, aiohttp.ClientSession() as http:
        olga = Browser(desk.base, http)
        await olga.start()
        await olga.connect()
        await olga.send("hello")
        await olga.wait(lambda f: f["t"] == "ack", "the ack")
        await settle(desk.gateway)
        (web_chat,) = await all_conversations(desk.gateway)
        await desk.gateway.workers["web"].stop(1.0)
        await operator_writes(desk.gateway, desk.tg, "anna", web_chat.id, "from elsewhere")
        await olga.wait(lambda f: f.get("text") == "from elsewhere", "the reply")
        await asyncio.sleep(2.5)  # more reads of what others delivered: none sends it again
        assert [f.get("text") for f in olga.frames].count("from elsewhere") == 1
        await olga.disconnect()


async def test_a_visitors_files_go_once_no_message_carries_them(
    tmp_path: Path, sqlite_url: str
) -> None:
    """An erase (or the retention period) empties the messages; the files they
    carried are then deleted from files_dir, and nobody else's."""
    config = web_config(sqlite_url, tmp_path, operators=("anna",))
    async with web_desk(config) as desk, aiohttp.ClientSession() as http:
        keys = {}
        for name in ("olga", "petro"):
            browser = Browser(desk.base, http)
            await browser.start()
            status, answer = await upload(browser, "receipt.png", "image/png", PNG)
            assert status == 200
            await browser.connect()
            await browser.send("my receipt", files=[answer["key"]])
            await browser.wait(lambda f: f["t"] == "ack", "the ack")
            await browser.disconnect()
            keys[name] = (str(answer["key"]), (browser.token or "").rpartition(".")[0])
        assert desk.tg.host is not None
        files = tmp_path / "web-files"
        assert await desk.web.files.sweep(desk.tg.host.message_files) == 0  # all carried
        assert (files / keys["olga"][0]).exists()
        await erase_customer(desk.gateway.repository, keys["olga"][1], yes=True)
        assert await desk.web.files.sweep(desk.tg.host.message_files) == 1
        assert not (files / keys["olga"][0]).exists()
        assert not (files / f"{keys['olga'][0]}.json").exists()
        assert (files / keys["petro"][0]).exists()
