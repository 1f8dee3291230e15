"""Mail handed to the gateway over SMTP (``[email] inbound = "smtp"``), with aiosmtpd.

The listener accepts mail for the support address only (it is no relay). A mail is
kept in the spool directory, then taken into the core, and only after the commit is
it answered 250: the sending server keeps anything answered 4xx and tries again
later, and the Message-ID makes the second time harmless. So a crash at any point
loses no mail, as with IMAP.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.errors import ShuttingDown

log = logging.getLogger(__name__)


class Spool:
    """Received mails as files, written durably before the sender hears 250."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def key(self, raw: bytes) -> str:
        return hashlib.sha256(raw).hexdigest()

    def path(self, key: str) -> Path:
        if not key.isalnum():
            raise ValueError("not a spool key")
        return self.directory / f"{key}.eml"

    def keep(self, raw: bytes) -> str:
        key = self.key(raw)
        target = self.path(key)
        if target.exists():
            return key
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        with open(partial, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
        return key

    def read(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except (OSError, ValueError):
            return None


class InboundHandler:
    """aiosmtpd's handler: who may be written to, and what becomes of a mail."""

    def __init__(
        self, address: str, spool: Spool, take: Callable[[bytes, str], Awaitable[None]]
    ) -> None:
        self.address = address.lower()
        self.spool = spool
        self.take = take

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() != self.address:
            return "550 5.1.1 No such mailbox here (this server takes mail for support only)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw).encode("utf-8", "surrogateescape")
        try:
            key = await asyncio.to_thread(self.spool.keep, raw)
        except OSError as exc:
            log.error("email: the spool cannot keep a mail (%s); the sender will retry", exc)
            return "451 4.3.0 Cannot store the mail right now; please try again later"
        try:
            await self.take(raw, key)
        except ShuttingDown:
            return "421 4.3.2 The gateway is restarting; please try again later"
        except Exception:
            # the taker logged why (once); the sending server tries again later
            return "451 4.3.0 Temporary failure; please try again later"
        return "250 OK: taken"


async def listen(
    handler: InboundHandler, host: str, port: int, *, max_bytes: int, hostname: str
) -> asyncio.Server:
    loop = asyncio.get_running_loop()

    def protocol() -> Any:
        return SMTP(
            handler,
            data_size_limit=max_bytes,
            enable_SMTPUTF8=True,
            hostname=hostname,
            ident="support-gateway",
            loop=loop,
        )

    return await loop.create_server(protocol, host, port)
