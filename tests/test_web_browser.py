"""The web chat in a real browser: a visitor on a shop's page writes, an operator
answers from a Telegram topic, the page is reloaded, a file goes along, the
conversation is rated; over the WebSocket and over the long poll."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from selenium.webdriver.common.keys import Keys

from gateway.config import parse_config
from gateway.plugins import channel_models
from sandbox.site import SiteSandbox
from tests.browser import Widget, chrome
from tests.support import all_conversations
from tests.telegram_support import eventually, telegram_desk
from tests.test_web import HOSTILE
from tests.web_support import SITE, web_config_text, web_desk

pytestmark = pytest.mark.long
#: a picture of a receipt, 240 x 120
RECEIPT = Path(__file__).parent / "fixtures" / "receipt.png"


@pytest.mark.parametrize("transport", ["socket", "poll"])
async def test_a_visitor_chats_with_a_telegram_operator_in_chromium(
    tmp_path: Path, sqlite_url: str, transport: str
) -> None:
    driver = await asyncio.to_thread(chrome)
    widget = Widget(driver)
    try:
        async with SiteSandbox("") as site:
            web = (
                f'\n[web]\norigins = ["{site.origin}"]\nfiles_dir = "{tmp_path}/files"\n'
                'ask_contact = "never"\ntitle = "Example Shop"\n'
            )
            async with telegram_desk(sqlite_url, extra=web) as desk:
                site.gateway_url = f"http://127.0.0.1:{desk.gateway.http.port}"
                page = site.origin + ("/?transport=poll" if transport == "poll" else "/")
                await asyncio.to_thread(widget.visit, page)
                await asyncio.to_thread(widget.open)
                assert widget.find("h2").text == "Example Shop"
                await asyncio.to_thread(widget.say, "Where is my order 1042?")
                topic = await eventually(lambda: desk.topic_of("Visitor"))
                await eventually(
                    lambda: any("order 1042" in (m.get("text") or "") for m in desk.in_topic(topic))
                )
                # typing shows in the topic ("typing…", a chat action)
                await asyncio.to_thread(widget.find("textarea").send_keys, "One more")
                await eventually(
                    lambda: any(
                        a["action"] == "typing" and a["message_thread_id"] == topic
                        for a in desk.sandbox.world.chat_actions
                    )
                )
                await asyncio.to_thread(widget.find("textarea").clear)
                desk.sandbox.send(
                    desk.anna, "It ships today!", chat_id=desk.workspace, thread_id=topic
                )
                await asyncio.to_thread(widget.see, "It ships today!")
                assert "Anna" in [w.text for w in widget.all(".who")]
                assert widget.state()["mode"] == transport

                # a reload keeps the history (the token is in localStorage)
                await asyncio.to_thread(widget.visit, page)
                await asyncio.to_thread(widget.open)
                await asyncio.to_thread(widget.see, "It ships today!")
                await asyncio.to_thread(widget.see, "Where is my order 1042?")

                # a file, relayed to the topic as a file
                await asyncio.to_thread(widget.attach, RECEIPT)
                await eventually(
                    lambda: any(m.get("photo") or m.get("document") for m in desk.in_topic(topic))
                )
                if transport == "socket":
                    # the picture README shows: a question, Anna's answer, a file
                    await asyncio.to_thread(widget.see_file)
                    shot = tmp_path / "widget.png"
                    await asyncio.to_thread(driver.save_screenshot, str(shot))
                    assert shot.stat().st_size > 20_000
                    keep = os.environ.get("GATEWAY_WIDGET_SCREENSHOT")
                    if keep:
                        shutil.copy(shot, keep)
                # hostile text stays text: nothing of it became an element
                await asyncio.to_thread(widget.say, HOSTILE)
                await asyncio.to_thread(widget.see, '<script>alert("x")</script>')
                assert not widget.all(".log script") and not widget.all(".text img")
                assert driver.execute_script("return document.title") == "Example Shop"

                # the operator closes; the visitor rates with a button
                desk.sandbox.send(desk.anna, "/close", chat_id=desk.workspace, thread_id=topic)
                await asyncio.to_thread(widget.press, "5 ★★★★★")

                async def rated() -> bool:
                    (only,) = await all_conversations(desk.gateway)
                    return only.channel == "web" and only.csat_score == 5

                await eventually(rated)
    finally:
        await asyncio.to_thread(driver.quit)


async def test_the_widget_works_from_the_keyboard_and_fills_a_phone(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Labelled for screen readers, opened and closed from the keyboard, focus where
    a person expects it; on a phone-sized screen the panel takes the screen and
    nothing scrolls sideways."""
    driver = await asyncio.to_thread(lambda: chrome(390, 780, phone=True))
    widget = Widget(driver)
    try:
        async with SiteSandbox("") as site:
            text = web_config_text(sqlite_url, tmp_path, operators=("anna",)).replace(
                SITE, site.origin
            )
            async with web_desk(parse_config(text, channel_models())) as desk:
                site.gateway_url = desk.base
                await asyncio.to_thread(widget.visit, site.origin + "/")
                launcher = await asyncio.to_thread(
                    widget.until, lambda: widget.find(".launcher[aria-label]"), "the launcher"
                )
                assert launcher.get_attribute("aria-label") == "Chat with us"
                assert launcher.get_attribute("aria-expanded") == "false"
                launcher.send_keys(Keys.ENTER)  # a keyboard user opens it
                await asyncio.to_thread(widget.until, lambda: widget.find(".panel").is_displayed())
                assert launcher.get_attribute("aria-expanded") == "true"
                assert widget.find(".panel").get_attribute("role") == "dialog"
                assert widget.find(".log").get_attribute("aria-live") == "polite"
                focused = driver.execute_script(
                    "return document.getElementById('support-chat').shadowRoot.activeElement.id"
                )
                assert focused == "sc-input"  # straight into the message box
                sizes = driver.execute_script(
                    "const r = arguments[0].getBoundingClientRect();"
                    "return [r.width, window.innerWidth, document.documentElement.scrollWidth]",
                    widget.find(".panel"),
                )
                assert sizes[0] == sizes[1] and sizes[2] <= sizes[1], sizes
                widget.find("textarea").send_keys("hello from a phone", Keys.ENTER)
                await asyncio.to_thread(widget.see, "hello from a phone")
                widget.find("textarea").send_keys(Keys.ESCAPE)  # Escape closes it
                await asyncio.to_thread(
                    widget.until, lambda: not widget.find(".panel").is_displayed()
                )
                focused = driver.execute_script(
                    "return document.getElementById('support-chat').shadowRoot"
                    ".activeElement.className"
                )
                assert focused == "launcher" or "launcher" in focused.split()
    finally:
        await asyncio.to_thread(driver.quit)
