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
import hashlib
import logging
import re
from dataclasses import replace
from email.utils import formataddr
from typing import Any

import aioimaplib
import aiosmtplib

from adapters.email import parse, quarantine
from adapters.email.compose import compose
from adapters.email.config import EmailSection
from adapters.email.inbound import InboundHandler, Spool, listen
from gateway.adapter import AdapterBase, Host, RateLimit
from gateway.cards import file_line
from gateway.config import Config
from gateway.errors import (
    GatewayError,
    PermanentFailure,
    ShuttingDown,
    StoreUnavailable,
    TemporaryFailure,
)
from gateway.events import Attachment, Delivery, FileData, Inbound, Receipt, Sender

log = logging.getLogger(__name__)

#: RFC 2177: IDLE is re-issued before the server's 30-minute inactivity timeout
IDLE_RENEW_SECONDS = 25 * 60
MAX_BACKOFF = 300.0
UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")


class ImapFailure(Exception):
    """An IMAP command answered NO or BAD."""


class EmailAdapter(AdapterBase):
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
        self._reader = asyncio.create_task(self._read_forever(), name="email-imap")
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

    async def readiness(self) -> str | None:
        """None when the mailbox is open (or the listener up); otherwise why not."""
        if self.connected.is_set():
            return None
        if self.section.inbound == "smtp":
            return "the SMTP listener is not running"
        return f"IMAP {self.section.imap_host}:{self.section.imap_port} is not connected"

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

    def _failed_once(self, key: str, exc: Exception) -> None:
        """One line for a mail's failed try, at warning the first time (no text of
        the mail: the reason's kind only)."""
        log.log(
            logging.WARNING if self._tries.first(key) else logging.DEBUG,
            "email: the mail at %s could not be taken in (%s); it is tried again, and "
            "the mails after it go on",
            key,
            type(exc).__name__,
        )

    async def _quarantine(self, imap: aioimaplib.IMAP4, uid: str, raw: bytes, reason: str) -> None:
        """The mail moves to the quarantine folder, marked with why."""
        folder = self.section.quarantine_folder
        await imap.create(folder)  # made when missing; an error here means it exists
        copy = quarantine.marked(raw, quarantine.digest(raw), reason)
        await self._ok(imap.append(copy, mailbox=folder, flags="(\\Seen)"))
        await self._ok(imap.uid("store", uid, "+FLAGS", "(\\Seen \\Deleted)"))
        await self._ok(imap.expunge())

    async def _set_aside(self, raw: bytes, key: str, exc: Exception, *, where: str) -> None:
        """Operators hear of a mail set aside; the log has it once, at error."""
        assert self.host is not None
        reason = quarantine.reason_of(exc)
        log.error(
            "email: a mail was set aside in %s after %d tries (%s)",
            where,
            quarantine.MAX_TRIES,
            type(exc).__name__,
            exc_info=exc,
        )
        note = quarantine.notice(raw, key, reason, where, self.name)
        for attempt in (note, quarantine.unreadable(note)):
            try:
                await self.host.ingest(attempt)
                return
            except (ShuttingDown, StoreUnavailable):
                raise
            except Exception as failure:
                log.error("email: the note on a mail set aside failed (%s)", type(failure).__name__)

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

    async def _take(self, raw: bytes, location: str, *, locator: str | None = None) -> None:
        """One mail into the core. Raises only when retrying may help (the mail then
        stays unread, or is refused with 4xx, and is taken again). ``locator`` is
        where its attachments are read back from (default: the mailbox)."""
        assert self.host is not None
        mail = parse.parse(raw, own_address=self.section.address)
        if not mail.sender_address or mail.sender_address == self.section.address:
            log.info("email: a mail without a sender, or from our own address, was skipped")
            log.debug("email: the mail skipped was from %s", mail.sender_address or "nobody")
            return
        event = f"mid:{mail.message_id}" if mail.message_id else f"uid:{location}"
        locator = locator or mail.message_id or f"uid:{location}"
        if mail.bounce and mail.bounced_id:
            result = await self.host.ingest(
                Inbound(
                    channel=self.name,
                    event_id=event,
                    chat_id=mail.sender_address,
                    sender=Sender(mail.sender_address, mail.sender_name or mail.sender_address),
                    text=mail.bounce_reason or "the mail server gave no reason",
                    failure_of=mail.bounced_id,
                )
            )
            if result.ignored is None:
                return
            # not one of ours: shown in its own conversation, like any robot's mail
            event = f"{event}:unmatched"
        text = mail.text
        if not mail.references and mail.token is None and mail.subject:
            text = f"{mail.subject}\n\n{text}" if text else mail.subject
        if mail.damaged:
            text += "\n\n[parts of this mail could not be read; the original is attached]"
        attachments = [
            Attachment(
                kind="photo" if part.mime.startswith("image/") else "document",
                file_ref=f"{locator}#{part.index}",
                name=part.name,
                mime=part.mime,
                size=part.size,
                origin=self.name,
            )
            for part in mail.parts
        ]
        if mail.text != mail.full_text or mail.damaged:
            # what was stripped (quotes, signature) or could not be read stays at hand
            attachments.append(
                Attachment(
                    kind="document",
                    file_ref=f"{locator}#raw",
                    name="original.eml",
                    mime="message/rfc822",
                    size=len(raw),
                    origin=self.name,
                )
            )
        await self.host.ingest(
            Inbound(
                channel=self.name,
                event_id=event,
                chat_id=mail.sender_address,
                sender=Sender(
                    mail.sender_address,
                    mail.sender_name or mail.sender_address,
                    language=mail.language,
                ),
                text=text.strip() or ("" if attachments else "[an empty mail]"),
                attachments=tuple(attachments),
                message_id=mail.message_id,
                thread_refs=mail.references,
                conversation_token=mail.token,
                explicit_threads=True,
                subject=_bare_subject(mail.subject),
                automated=mail.automated,
                sent_at=mail.sent_at,
            )
        )

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

    async def deliver(self, delivery: Delivery) -> Receipt:
        out = delivery.outbound
        customer = str(out.chat_id)
        if out.kind in ("edit", "delete") and not delivery.edit_refs:
            return Receipt(chat_id=customer)  # the original never went out: nothing to correct
        files: list[FileData] = []
        notices: list[str] = []
        limit = self.section.max_attachment_mb * 2**20
        for attachment in out.attachments:
            line = file_line(attachment.name, attachment.kind, attachment.size)
            if not attachment.origin:
                notices.append(line)
                continue
            try:
                assert self.host is not None
                file = await self.host.fetch(attachment)
            except PermanentFailure as exc:
                notices.append(f"{line}: {exc}")
                continue
            if len(file.data) > limit:
                notices.append(
                    f"{line}: over the {self.section.max_attachment_mb:g} MB we send by mail"
                )
                continue
            files.append(file)
        if notices:
            text = "\n".join([out.text, *notices]) if out.text else "\n".join(notices)
            delivery = replace(delivery, outbound=replace(out, text=text))
        mail = compose(
            delivery,
            address=self.section.address,
            display_name=self.section.display_name,
            to=formataddr(("", customer)),
            domain=self.domain,
            files=files,
        )
        # the same delivery keeps its Message-ID across retries: a mail that did go out
        # before a timeout is recognised as the same mail by the customer's provider
        digest = hashlib.sha256(delivery.key.encode()).hexdigest()[:32]
        del mail["Message-ID"]
        mail["Message-ID"] = f"<{digest}.{out.conversation_id}@{self.domain}>"
        await self._send(mail)
        return Receipt(external_ids=(str(mail["Message-ID"]),), chat_id=customer)

    async def _send(self, mail: Any) -> None:
        section = self.section
        password = section.smtp_password.get_secret_value() if section.smtp_password else None
        try:
            await aiosmtplib.send(
                mail,
                hostname=section.smtp_host,
                port=section.smtp_port,
                username=section.smtp_user,
                password=password,
                use_tls=section.smtp_security == "ssl",
                start_tls=True if section.smtp_security == "starttls" else False,
                timeout=60,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            worst = next(iter(exc.recipients), None)
            code = worst.code if worst else 550
            reason = (
                f"the mail server refused the address: {worst.code} {worst.message}"
                if worst
                else str(exc)
            )
            raise (TemporaryFailure if 400 <= code < 500 else PermanentFailure)(reason) from None
        except aiosmtplib.SMTPResponseException as exc:
            reason = f"the mail server answered {exc.code} {exc.message}"
            if 400 <= exc.code < 500:
                raise TemporaryFailure(reason) from None
            raise PermanentFailure(reason) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TemporaryFailure(f"SMTP {section.smtp_host}:{section.smtp_port}: {exc}") from None


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


def _bare_subject(subject: str) -> str:
    """The subject without reply prefixes and our token: what the conversation is about."""
    bare = parse.TOKEN.sub("", subject)
    while True:
        stripped = re.sub(r"^\s*(re|aw|sv|fwd?|ответ|відповідь)\s*:\s*", "", bare, flags=re.I)
        if stripped == bare:
            return bare.strip()
        bare = stripped
