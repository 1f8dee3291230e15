"""IMAP in: the folder read with IDLE (or polled), each mail taken and then marked
\\Seen or moved to ``processed_folder``, one that cannot be parsed quarantined; and
the attachments other channels fetch, from the mailbox or the spool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

import aioimaplib

from adapters.email import parse, quarantine
from adapters.email.inbound import Spool
from adapters.email.taking import MailIntake
from gateway.adapter import Host
from gateway.errors import (
    PermanentFailure,
    ShuttingDown,
    StoreUnavailable,
    TemporaryFailure,
)
from gateway.events import Attachment, FileData

log = logging.getLogger(__name__)

#: RFC 2177: IDLE is re-issued before the server's 30-minute inactivity timeout
IDLE_RENEW_SECONDS = 25 * 60
MAX_BACKOFF = 300.0
UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")


class ImapFailure(Exception):
    """An IMAP command answered NO or BAD."""


class ImapReader(MailIntake):
    """Reading the mailbox, for ``EmailAdapter``, which sets these up."""

    spool: Spool
    connected: asyncio.Event
    _stopping: bool
    _reading: bool = False

    async def _connect(self, lost: asyncio.Event | None = None) -> aioimaplib.IMAP4:
        section = self.section
        cls = aioimaplib.IMAP4_SSL if section.imap_ssl else aioimaplib.IMAP4
        imap = cls(
            host=section.imap_host,
            port=section.imap_port,
            timeout=60,
            conn_lost_cb=(lambda exc: lost.set()) if lost is not None else None,
        )
        await imap.wait_hello_from_server()
        assert section.imap_host and section.imap_user and section.imap_password
        login = await imap.login(section.imap_user, section.imap_password.get_secret_value())
        if login.result != "OK":
            raise ImapFailure("the login was refused (email.imap_user / email.imap_password)")
        return imap

    @staticmethod
    async def _ok(call: Any) -> aioimaplib.Response:
        response = await call
        if response.result != "OK":
            raise ImapFailure(" ".join(_text(line) for line in response.lines)[:300])
        return response

    @property
    def reading(self) -> bool:
        """Whether this process reads the mailbox now (it holds the IMAP role)."""
        return self._reading

    async def _read_as_holder(self, host: Host) -> None:
        """Read the mailbox while this process holds the IMAP role: with several
        processes, one reads and the others take over when it dies or stops
        (``gateway.roles``). A mail taken in but not yet marked when the role moves
        is read again by the next holder, and known by its Message-ID."""
        role = f"{self.name}:imap"
        while not self._stopping:
            try:
                async with host.role(role) as held:
                    self._reading = True
                    reader = asyncio.create_task(self._read_forever())
                    lost = asyncio.create_task(held.lost.wait())
                    try:
                        await asyncio.wait([reader, lost], return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        self._reading = False
                        self.connected.clear()
                        lost.cancel()
                        reader.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await reader
            except ShuttingDown:
                return

    async def _read_forever(self) -> None:
        pause = 1.0
        while not self._stopping:
            imap: aioimaplib.IMAP4 | None = None
            lost = asyncio.Event()
            try:
                imap = await self._connect(lost)
                if self.section.processed_folder:
                    # made when missing; an error here means it exists already
                    await imap.create(self.section.processed_folder)
                selected = await self._ok(imap.select(self.section.imap_folder))
                validity = _uidvalidity(selected.lines)
                self.connected.set()
                if pause > 1.0:
                    log.info("email: connected to the mailbox again")
                pause = 1.0
                while not self._stopping:
                    await self._drain(imap, validity)
                    await self._wait(imap, lost)
            except asyncio.CancelledError:
                if imap is not None:  # stopping: no polite LOGOUT in the middle of an IDLE
                    transport = getattr(imap.protocol, "transport", None)
                    if transport is not None:
                        transport.close()
                    imap = None
                raise
            except ShuttingDown:
                return
            except StoreUnavailable as exc:
                log.warning("email: %s; the mail waits, trying again in %.0fs", exc, pause)
            except (OSError, TimeoutError, ImapFailure, aioimaplib.Abort, aioimaplib.Error) as exc:
                self.connected.clear()
                log.warning(
                    "email: IMAP %s:%d: %s; trying again in %.0fs",
                    self.section.imap_host,
                    self.section.imap_port,
                    exc or type(exc).__name__,
                    pause,
                )
            except Exception:
                self.connected.clear()
                log.exception("email: the mailbox reader failed; trying again in %.0fs", pause)
            finally:
                if imap is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(imap.logout(), 5)
            await asyncio.sleep(pause)
            pause = min(MAX_BACKOFF, pause * 2)

    async def _wait(self, imap: aioimaplib.IMAP4, lost: asyncio.Event) -> None:
        """Until new mail may be there: an IDLE push, or the next poll. A connection
        the server closed (or that died) is noticed here, not 25 minutes later."""
        wait = float(self.section.poll_seconds)
        retry = self._tries.next_due()
        if retry is not None:  # a mail that failed is tried again then
            wait = min(wait, max(0.1, retry - asyncio.get_running_loop().time()))
        if not imap.has_capability("IDLE"):
            await _first(asyncio.sleep(wait), lost.wait())
        else:
            renew = IDLE_RENEW_SECONDS if retry is None else wait
            idle = await imap.idle_start(timeout=renew)
            pushed = await _first(imap.wait_server_push(timeout=renew), lost.wait())
            if lost.is_set() or any(b"BYE" in bytes(x) for x in pushed or () if _is_bytes(x)):
                raise ImapFailure("the server closed the connection")
            imap.idle_done()
            await asyncio.wait_for(idle, 30)
        if lost.is_set():
            raise ImapFailure("the connection was lost")

    async def _drain(self, imap: aioimaplib.IMAP4, validity: str) -> None:
        """Take every unread mail in order; each is marked only once committed. One
        that fails is tried again later while the rest go on, and set aside after
        its last try (``quarantine``)."""
        found = await self._ok(imap.uid_search("UNSEEN"))
        uids = [u for u in _text(found.lines[0]).split() if u.isdigit()] if found.lines else []
        now = asyncio.get_running_loop().time()
        for uid in uids:
            key = f"{self.section.imap_folder}:{validity}:{uid}"
            if self._tries.waiting(key, now):
                continue
            fetched = await self._ok(imap.uid("fetch", uid, "(BODY.PEEK[])"))
            raw = next((bytes(line) for line in fetched.lines if isinstance(line, bytearray)), None)
            if raw is None:
                continue  # deleted meanwhile
            try:
                await self._take(raw, key)
            except (ShuttingDown, StoreUnavailable):
                raise
            except Exception as exc:
                if not self._tries.failed(key, asyncio.get_running_loop().time()):
                    self._failed_once(key, exc)
                    continue
                folder = self.section.quarantine_folder
                await self._quarantine(imap, uid, raw, quarantine.reason_of(exc))
                await self._set_aside(raw, quarantine.digest(raw), exc, where=f'folder "{folder}"')
                continue
            self._tries.forget(key)
            await self._processed(imap, uid)

    async def _quarantine(self, imap: aioimaplib.IMAP4, uid: str, raw: bytes, reason: str) -> None:
        """The mail moves to the quarantine folder, marked with why."""
        folder = self.section.quarantine_folder
        await imap.create(folder)  # made when missing; an error here means it exists
        copy = quarantine.marked(raw, quarantine.digest(raw), reason)
        await self._ok(imap.append(copy, mailbox=folder, flags="(\\Seen)"))
        await self._ok(imap.uid("store", uid, "+FLAGS", "(\\Seen \\Deleted)"))
        await self._ok(imap.expunge())

    async def _processed(self, imap: aioimaplib.IMAP4, uid: str) -> None:
        await self._ok(imap.uid("store", uid, "+FLAGS", "(\\Seen)"))
        target = self.section.processed_folder
        if target is None:
            return
        if imap.has_capability("MOVE"):
            await self._ok(imap.uid("move", uid, target))
        else:
            await self._ok(imap.uid("copy", uid, target))
            await self._ok(imap.uid("store", uid, "+FLAGS", "(\\Deleted)"))
            await self._ok(imap.expunge())

    # -- files --------------------------------------------------------------------------------

    async def fetch(self, attachment: Attachment) -> FileData:
        """A part of a mail, read again from the mailbox (in either folder), or from
        the spool for mail that came over SMTP."""
        locator, _, index = attachment.file_ref.rpartition("#")
        if locator.startswith("quarantine:") and self.section.inbound == "smtp":
            locator = "spool:" + locator.removeprefix("quarantine:")  # kept where it was
        if locator.startswith("spool:"):
            raw = await asyncio.to_thread(self.spool.read, locator.removeprefix("spool:"))
            if raw is None:
                raise PermanentFailure("the mail is no longer in the spool")
            return self._part(raw, index, attachment)
        if self.section.inbound != "imap":
            raise PermanentFailure("the mail came from a mailbox this gateway no longer reads")
        imap = await self._connect()
        try:
            raw = await self._find(imap, locator)
        except (OSError, TimeoutError, aioimaplib.Abort) as exc:
            raise TemporaryFailure(f"email: IMAP: {exc}") from None
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(imap.logout(), 5)
        if raw is None:
            raise PermanentFailure("the mail is no longer in the mailbox")
        return self._part(raw, index, attachment)

    @staticmethod
    def _part(raw: bytes, index: str, attachment: Attachment) -> FileData:
        data = raw if index == "raw" else parse.part_bytes(raw, int(index or -1))
        if data is None:
            raise PermanentFailure("the mail no longer has that part")
        return FileData(attachment.name or "attachment", attachment.mime or "", data)

    async def _find(self, imap: aioimaplib.IMAP4, locator: str) -> bytes | None:
        folders = [f for f in (self.section.processed_folder, self.section.imap_folder) if f]
        if locator.startswith("quarantine:"):
            folders = [self.section.quarantine_folder]
        for folder in folders:
            if (await imap.select(folder)).result != "OK":
                continue
            if locator.startswith("quarantine:"):
                key = locator.removeprefix("quarantine:")
                if not key.isalnum():
                    return None
                found = await imap.uid_search(f'HEADER {quarantine.ID_HEADER} "{key}"')
                uids = _text(found.lines[0]).split() if found.result == "OK" and found.lines else []
            elif locator.startswith("uid:"):
                _, where, _, uid = locator.split(":", 3)
                if where != folder:
                    continue
                uids = [uid]
            else:
                found = await imap.uid_search(f'HEADER Message-ID "{locator}"')
                uids = _text(found.lines[0]).split() if found.result == "OK" and found.lines else []
            for uid in uids:
                if not uid.isdigit():
                    continue
                fetched = await imap.uid("fetch", uid, "(BODY.PEEK[])")
                raw = next((bytes(x) for x in fetched.lines if isinstance(x, bytearray)), None)
                if raw is not None:
                    return raw
        return None

    # -- SMTP out -----------------------------------------------------------------------------


async def _first(*calls: Any) -> Any:
    """The result of whichever finishes first (None on a timeout); the rest cancelled."""
    tasks = [asyncio.ensure_future(c) for c in calls]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    for task in done:
        if not task.cancelled() and task.exception() is None:
            return task.result()
    return None


def _is_bytes(line: Any) -> bool:
    return isinstance(line, (bytes, bytearray))


def _text(line: bytes | bytearray | str) -> str:
    return line.decode(errors="replace") if isinstance(line, (bytes, bytearray)) else str(line)


def _uidvalidity(lines: list[Any]) -> str:
    for line in lines:
        if isinstance(line, (bytes, bytearray)):
            found = UIDVALIDITY.search(bytes(line))
            if found:
                return found.group(1).decode()
    return "0"
