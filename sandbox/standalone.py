"""`gateway sandbox --config PATH`: the sandboxes on their own, on loopback, for
trying a config (its FAQ, routing, hours and texts) before any real token exists.

It starts Telegram, Slack and the customers' mail servers, creates the operators'
group and channel with the operators of the config (under their configured ids),
writes a copy of the config pointed at the sandboxes, and lets the person at the
terminal play the customers and operators while `gateway run` uses that copy.
"""

from __future__ import annotations

import asyncio
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sandbox.mail import MailSandbox
from sandbox.playground import Console, Playground, Watcher
from sandbox.site import SiteSandbox, web_section
from sandbox.slack import Limits as SlackLimits
from sandbox.slack import SlackSandbox
from sandbox.telegram import Limits as TelegramLimits
from sandbox.telegram import TelegramSandbox

CHANNEL_TABLES = ("telegram", "slack", "email", "web")
_TABLE = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
DEFAULT_ADDRESS = "support@example.com"


@dataclass(frozen=True)
class Ports:
    telegram: int = 8081
    slack: int = 8082
    #: the customers' mail servers: what the gateway sends arrives here
    mail: int = 2526
    #: the gateway's own SMTP listener in the sandbox copy: customers' mail goes there
    gateway_mail: int = 2525
    #: a shop's site with the web chat widget on it
    site: int = 8083


def _telegram_id(op: dict[str, Any]) -> int | None:
    value = op.get("telegram_id", (op.get("ids") or {}).get("telegram"))
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def operators_of(data: dict[str, Any]) -> list[tuple[str, str, int | None, str | None]]:
    return [
        (
            str(op.get("id")),
            str(op.get("name") or op.get("id")),
            _telegram_id(op),
            str(op.get("slack_id") or (op.get("ids") or {}).get("slack") or "") or None,
        )
        for op in data.get("operators") or []
        if op.get("id")
    ]


def _table(line: str) -> str | None:
    """The table a header line opens ("operators" for [[operators]]), else None."""
    header = _TABLE.match(line)
    return header.group(1).split(".")[0].strip() if header else None


def sandbox_config(
    text: str, ground: Playground, ports: Ports, database: Path, site: SiteSandbox | None = None
) -> str:
    """The config's text with its channel sections commented out, the database moved
    to a file of its own, and channel sections for the sandboxes appended (the web
    chat's for ``site``, keeping the admin's look)."""
    lines, table = [], ""
    for line in text.splitlines():
        table = _table(line) or table
        if table in CHANNEL_TABLES:
            lines.append(f"# (replaced for the sandbox) {line}")
        elif table == "gateway" and re.match(r"^\s*database_url\s*=", line):
            lines.append(f"# (replaced for the sandbox) {line}")
        else:
            lines.append(line)
    database_line = f'database_url = "sqlite+aiosqlite:///{database}"'
    at = next((i for i, line in enumerate(lines) if _table(line) == "gateway"), None)
    if at is not None:
        lines.insert(at + 1, database_line)
    else:
        lines[:0] = ["[gateway]", database_line, ""]
    lines += [
        "",
        "# -- written by `gateway sandbox`: the channels point at the sandboxes --",
        ground.channel_sections(
            listen_port=ports.gateway_mail, spool_dir=database.parent / "sandbox-mail-spool"
        ),
    ]
    if site is not None:
        admin = tomllib.loads(text).get("web")
        files = database.parent / "sandbox-web-files"
        lines += ["", web_section(site.origin, files, admin if isinstance(admin, dict) else None)]
    return "\n".join(lines)


async def run_sandbox(config_path: str, out: TextIO, ports: Ports = Ports()) -> int:
    path = Path(config_path)
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as error:
        out.write(f"cannot read {path}: {error}\n")
        return 2
    email = data.get("email") or {}
    address = str(email.get("address") or DEFAULT_ADDRESS)
    operators = operators_of(data)
    ground = Playground(
        TelegramSandbox(limits=TelegramLimits(), port=ports.telegram),
        SlackSandbox(limits=SlackLimits(), port=ports.slack),
        MailSandbox(port=ports.mail),
        address,
        gateway_mail_port=ports.gateway_mail,
    )
    gateway = data.get("gateway") or {}
    site = SiteSandbox(f"http://127.0.0.1:{int(gateway.get('http_port', 8080))}", port=ports.site)
    try:
        await ground.telegram.start()
        await ground.slack.start()
        await ground.mail.start()
        await site.start()
    except OSError as error:
        out.write(f"cannot start the sandboxes: {error} (choose other ports: --help)\n")
        await _stop(ground)
        await site.stop()
        return 1
    try:
        ground.setup(operators)
        copy = path.with_name(f"{path.stem}.sandbox.toml")
        database = (path.parent / "sandbox.db").resolve()
        written = sandbox_config(text, ground, ports, database, site)
        await asyncio.to_thread(copy.write_text, written, encoding="utf-8")
        out.write(_intro(ground, ports, copy, operators, site))
        watcher = Watcher(out, ground)
        printer = asyncio.create_task(watcher.forever(0.1))
        try:
            await Console(ground, out).run()
        finally:
            printer.cancel()
    finally:
        await _stop(ground)
        await site.stop()
    return 0


async def _stop(ground: Playground) -> None:
    for part in (ground.mail, ground.slack, ground.telegram):
        await part.stop()


def _intro(
    ground: Playground,
    ports: Ports,
    copy: Path,
    operators: list[tuple[str, str, int | None, str | None]],
    site: SiteSandbox,
) -> str:
    people = ", ".join(
        f"{op_id} (telegram {ground.operators_tg[op_id]['id']}, slack "
        f"{ground.operators_slack[op_id]['id']})"
        for op_id, *_ in operators
    )
    gaps = []
    for op_id, _name, tg, sl in operators:
        absent = [key for key, value in (("telegram_id", tg), ("slack_id", sl)) if value is None]
        if absent:
            gaps.append(f"{op_id} has no {' and no '.join(absent)}")
    lines = [
        "Sandboxes running on loopback, with Telegram's and Slack's rate limits on:",
        f'  Telegram Bot API  api_base = "{ground.telegram.api_base}"  '
        f"(forum group {ground.forum['id']})",
        f'  Slack Web API     api_base = "{ground.slack.api_base}"  '
        f"(channel {ground.channel['id']}, Socket Mode)",
        f"  Mail              customers' servers at 127.0.0.1:{ports.mail}; "
        f"their mail goes to the gateway at 127.0.0.1:{ports.gateway_mail}",
        f"  Web chat          a shop's page with the widget: {site.origin}/ (open it in a "
        "browser once the gateway runs)",
        f"  Operators         {people or 'none in the config'}",
    ]
    if gaps:
        lines.append(
            f"  ! in the config, {'; '.join(gaps)}: the sandbox gave them ids the copy does "
            "not know; add those ids to act as them there (an operator who can act in no "
            "workspace stops the gateway from starting)"
        )
    lines += [
        "",
        f"Wrote {copy}: your config, with [telegram], [slack], [email] and [web] pointed at the",
        "sandboxes and its own database (and the sandboxes' tokens written in it: the",
        "gateway's warnings of secrets in the file are expected for this copy). In another",
        "terminal run:",
        f"  gateway run --config {copy}",
        "",
        "Then play the customers and the operators here (Ctrl-D or quit to stop).",
        "",
    ]
    return "\n".join(lines) + "\n"
