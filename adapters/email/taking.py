"""A mail taken in, whichever way it came (IMAP or our SMTP listener): parsed,
handed to the core, and, when it keeps failing, set aside with a placeholder for
operators so that it never holds up the mails behind it.
"""

from __future__ import annotations

import logging
import re

from adapters.email import parse, quarantine
from adapters.email.config import EmailSection
from gateway.adapter import Host
from gateway.config import Config
from gateway.errors import (
    ShuttingDown,
    StoreUnavailable,
)
from gateway.events import Attachment, Inbound, Sender

log = logging.getLogger(__name__)


class MailIntake:
    """Taking a mail in, for ``EmailAdapter``, which sets these up."""

    name: str
    section: EmailSection
    config: Config
    host: Host | None
    _tries: quarantine.Tries

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


def _bare_subject(subject: str) -> str:
    """The subject without reply prefixes and our token: what the conversation is about."""
    bare = parse.TOKEN.sub("", subject)
    while True:
        stripped = re.sub(r"^\s*(re|aw|sv|fwd?|ответ|відповідь)\s*:\s*", "", bare, flags=re.I)
        if stripped == bare:
            return bare.strip()
        bare = stripped
