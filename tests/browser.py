"""Debian's Chromium driven through its chromedriver (selenium): nothing is
downloaded at run time. The web chat's tests read the widget inside its shadow
root the way a person sees it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from tests.support import SAFETY_SECONDS


def chrome(width: int = 1280, height: int = 900, *, phone: bool = False) -> webdriver.Chrome:
    """A headless Chromium, or the test skipped (failed where a browser is required).
    ``phone``: the screen of a phone (``width`` by ``height``, touch), as Chromium's
    device emulation makes it (a desktop window is never narrower than 500 px)."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        if os.environ.get("GATEWAY_REQUIRE_BROWSER"):
            pytest.fail("GATEWAY_REQUIRE_BROWSER is set but chromium/chromedriver are missing")
        pytest.skip("no Chromium with chromedriver (apt-get install chromium-driver)")
    options = Options()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    if phone:
        metrics = {"width": width, "height": height, "pixelRatio": 2.0, "touch": True}
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics})
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


class Widget:
    """The chat widget on a page, as a visitor uses it."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver

    def visit(self, url: str) -> None:
        self.driver.get(url)
        self.until(lambda: self.driver.execute_script("return !!window.SupportChat"))

    def root(self) -> Any:
        return self.driver.find_element(By.ID, "support-chat").shadow_root

    def find(self, css: str) -> WebElement:
        return self.root().find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return list(self.root().find_elements(By.CSS_SELECTOR, css))

    def until(self, condition: Callable[[], Any], what: str = "") -> Any:
        """Wait for ``condition``; a node the widget replaced meanwhile is looked
        for again."""
        return WebDriverWait(
            self.driver,
            SAFETY_SECONDS,
            poll_frequency=0.05,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        ).until(lambda _driver: condition(), message=what)

    def open(self) -> None:
        self.until(lambda: self.find(".launcher").get_attribute("aria-label"), "the session")
        self.find(".launcher").click()
        self.until(lambda: self.find(".panel").is_displayed(), "the panel")

    def say(self, text: str) -> None:
        box = self.find("textarea")
        box.send_keys(text)
        box.send_keys(Keys.ENTER)

    def bubbles(self) -> list[str]:
        script = "return [...arguments[0].querySelectorAll('.msg .text')].map(n => n.textContent)"
        return list(self.driver.execute_script(script, self.root()))

    def see(self, text: str) -> None:
        try:
            self.until(lambda: any(text in b for b in self.bubbles()))
        except TimeoutException:
            raise AssertionError(
                f"{text!r} is not on the page: {self.bubbles()} {self.state()} "
                f"{self.driver.get_log('browser')}"
            ) from None

    def see_file(self) -> None:
        """A file's bubble is on the page, and shown (a picture loaded)."""
        self.until(
            lambda: (
                self.all(".files img")
                and all(img.get_attribute("src") for img in self.all(".files img"))
            ),
            "a file on the page",
        )

    def attach(self, path: Path) -> None:
        self.find("input[type=file]").send_keys(str(path))

    def press(self, label: str) -> None:
        def pressed() -> bool:
            button = next((b for b in self.all(".choice") if b.text == label), None)
            if button is None:
                return False
            button.click()
            return True

        self.until(pressed, label)

    def state(self) -> dict[str, Any]:
        return dict(self.driver.execute_script("return window.SupportChat.state()"))
