"""Email customers: IMAP in (aioimaplib, IDLE or polling), or mail handed to our own
SMTP listener (``inbound = "smtp"``, see ``inbound``); SMTP out (aiosmtplib).

A mail is marked \\Seen (or moved to ``processed_folder``), or answered 250, only
after the core has committed it. Dedupe is on Message-ID (or, without one, on the
folder's UIDVALIDITY and the mail's UID, or the mail's digest), so a restart, a
re-downloaded mail or one marked unread again never becomes a second message.
Attachments stay in the mailbox (or the spool) and are fetched from there when
another channel needs their bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from adapters.email import quarantine
from adapters.email.config import EmailSection
from adapters.email.imap import ImapReader
from adapters.email.inbound import InboundHandler, Spool, listen
from adapters.email.smtp_out import SmtpDelivery
from gateway.adapter import AdapterBase, Host, RateLimit
from gateway.config import Config
from gateway.errors import (
    GatewayError,
    ShuttingDown,
    StoreUnavailable,
)
from gateway.events import Delivery

log = logging.getLogger(__name__)


class EmailAdapter(ImapReader, SmtpDelivery, AdapterBase):
    name = "email"
    serves_workspace = False
    max_batch = 1
    #: a reply names the earlier mails it answers (In-Reply-To, References)
    wants_history = True
    #: one SMTP connection per mail: relays cap connections per client (Postfix
    #: at 50 by default, hosted relays far lower), so no more than this at once
    max_in_flight = 8

    def __init__(self, section: EmailSection, config: Config) -> None:
        self.section = section
        self.config = config
        self.domain = section.address.rpartition("@")[2]
        # mail servers throttle senders; a steady pace keeps us off their lists
        self.rate_limits = (
            RateLimit("smtp", rate=5, per_seconds=1.0, burst=10, key=lambda _: "smtp"),
        )
        self.host: Host | None = None
        self._reader: asyncio.Task[None] | None = None
        self._listener: asyncio.Server | None = None
        self.spool = Spool(section.spool_dir)
        self._stopping = False
        self.connected = asyncio.Event()  # the IMAP reader is logged in (or listening)
        #: mails whose intake failed, until they are taken or set aside
        self._tries = quarantine.Tries()

    def cost(self, delivery: Delivery) -> int:
        return 1

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, host: Host) -> None:
        self.host = host
        if self.section.inbound == "smtp":
            await self._listen()
            return
        self._reader = asyncio.create_task(self._read_as_holder(host), name="email-imap")
        log.info(
            "email: reading %s at %s:%d, sending through %s:%d",
            self.section.imap_folder,
            self.section.imap_host,
            self.section.imap_port,
            self.section.smtp_host,
            self.section.smtp_port,
        )

    async def _listen(self) -> None:
        section = self.section

        async def take(raw: bytes, key: str) -> None:
            try:
                await self._take(raw, f"smtp:{key}", locator=f"spool:{key}")
            except (ShuttingDown, StoreUnavailable):
                raise
            except Exception as exc:
                # answered 4xx, the sender tries again later; on the last try, the
                # mail stays in the spool, set aside, and the sender hears 250
                if not self._tries.failed(f"smtp:{key}", asyncio.get_running_loop().time()):
                    self._failed_once(f"smtp:{key}", exc)
                    raise
                await self._set_aside(raw, key, exc, where=f"the spool ({self.spool.directory})")
            self._tries.forget(f"smtp:{key}")

        handler = InboundHandler(section.address, self.spool, take)
        try:
            self._listener = await listen(
                handler,
                section.listen_host,
                section.listen_port,
                max_bytes=int(section.max_message_mb * 2**20),
                hostname=self.domain,
            )
        except OSError as exc:
            raise GatewayError(
                f"email: cannot listen for mail on {section.listen_host}:{section.listen_port} "
                f"(email.listen_host / email.listen_port): {exc}"
            ) from None
        sockets = self._listener.sockets
        self.listen_port = sockets[0].getsockname()[1] if sockets else section.listen_port
        self.connected.set()
        log.info(
            "email: taking mail for %s over SMTP at %s:%d, sending through %s:%d",
            section.address,
            section.listen_host,
            self.listen_port,
            section.smtp_host,
            section.smtp_port,
        )

    async def stop(self) -> None:
        self._stopping = True
        if self._listener is not None:
            self._listener.close()
            await self._listener.wait_closed()
            self._listener = None
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    # -- IMAP in ----------------------------------------------------------------------------

    async def readiness(self) -> str | None:
        """None when the mailbox is open (or the listener up); otherwise why not."""
        if self.connected.is_set():
            return None
        if self.section.inbound == "imap" and not self.reading:
            return None  # another process reads the mailbox; this one stands by
        if self.section.inbound == "smtp":
            return "the SMTP listener is not running"
        return f"IMAP {self.section.imap_host}:{self.section.imap_port} is not connected"
