"""A customer's website with the chat widget on it: one page, one script tag, as a
site owner would add it. The gateway's ``[web] origins`` must list this site's
address; the page loads ``widget.js`` from the gateway itself."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from aiohttp import web

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Example Shop</title>
<style>
  body {{ font: 16px/1.5 Georgia, serif; margin: 0; color: #222; background: #fbfaf7; }}
  header {{ background: #1f2937; color: #fff; padding: 18px 32px; font-size: 22px; }}
  main {{ max-width: 720px; margin: 32px auto; padding: 0 24px; }}
  .item {{ border: 1px solid #ddd; background: #fff; padding: 16px; margin: 12px 0; }}
</style>
</head>
<body>
<header>Example Shop</header>
<main>
  <h1>Handmade mugs</h1>
  <div class="item">Blue mug, 350 ml: 18 EUR</div>
  <div class="item">Green mug, 250 ml: 15 EUR</div>
  <p>Questions about an order? Use the chat in the corner.</p>
</main>
<script src="{gateway}/widget.js" async{attributes}></script>
</body>
</html>
"""


class SiteSandbox:
    """Serves the page at ``/``; ``/?transport=poll`` makes the widget long-poll,
    and ``data-*`` for the script tag can be set per test (``attributes``)."""

    def __init__(self, gateway_url: str, port: int = 0, host: str = "127.0.0.1") -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self.host = host
        self.port = port
        self.attributes: dict[str, str] = {}
        self._runner: web.AppRunner | None = None

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _page(self, request: web.Request) -> web.Response:
        attributes = dict(self.attributes)
        if request.query.get("transport") == "poll":
            attributes["transport"] = "poll"
        text = "".join(
            f' data-{html.escape(name)}="{html.escape(value)}"'
            for name, value in sorted(attributes.items())
        )
        return web.Response(
            text=PAGE.format(gateway=html.escape(self.gateway_url), attributes=text),
            content_type="text/html",
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._page)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or ()
        if self.port == 0 and sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SiteSandbox:
        await self.start()
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.stop()


#: [web] keys a sandbox copy keeps from the admin's config: how the widget looks and
#: behaves; where it may run and where its files go are the sandbox's
KEPT_WEB_KEYS = (
    "title",
    "colour",
    "position",
    "ask_contact",
    "email_after_minutes",
    "max_text_chars",
    "max_file_mb",
    "file_types",
    "messages_per_minute",
)


def web_section(origin: str, files_dir: Path, admin: dict[str, Any] | None = None) -> str:
    """A [web] section for a config pointed at this site: its origin allowed, the
    admin's look and behaviour kept (values written as JSON, which TOML reads)."""
    lines = [
        "[web]",
        f"origins = [{json.dumps(origin)}]",
        f"files_dir = {json.dumps(str(files_dir))}",
    ]
    for key in KEPT_WEB_KEYS:
        if admin and key in admin:
            lines.append(f"{key} = {json.dumps(admin[key], ensure_ascii=False)}")
    return "\n".join(lines) + "\n"
