"""Mail that cannot be taken in, set aside so that the mail behind it is not held.

A mail whose intake fails for a reason of its own (not a database outage, which
fails every mail alike: ``StoreUnavailable``) is tried ``MAX_TRIES`` times,
``RETRY_SECONDS`` apart, while the mails after it go on. Then it is set aside: from
IMAP, moved into ``email.quarantine_folder`` as a copy with two headers on top
(``X-Gateway-Quarantine-Id`` and ``-Reason``: an admin sees why in any mail client);
over SMTP, kept in the spool's ``quarantine`` directory and answered 250, so the
sending server stops retrying. Operators see a note in a conversation of the
sender's (or of "unreadable mail", when not even the sender can be read) with the
original attached; the log has one line at error. Nothing is lost.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from adapters.email import parse
from gateway.events import Attachment, Inbound, Sender

MAX_TRIES = 3
#: the waits before the second and the third try
RETRY_SECONDS = (2.0, 10.0)
#: who a note is from when the mail's sender cannot be read (RFC 2606: never a
#: real address, so nothing is ever sent there)
UNREADABLE = "unreadable-mail@invalid"
ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
ID_HEADER = "X-Gateway-Quarantine-Id"


@dataclass
class Tries:
    """Failed tries per mail (by where it is: folder, UIDVALIDITY, UID; or spool
    key), and when each may be tried again."""

    counts: dict[str, int] = field(default_factory=dict)
    due: dict[str, float] = field(default_factory=dict)

    def waiting(self, key: str, now: float) -> bool:
        return self.due.get(key, 0.0) > now

    def failed(self, key: str, now: float) -> bool:
        """Count a failed try; True when the mail is to be set aside now."""
        count = self.counts.get(key, 0) + 1
        if count >= MAX_TRIES:
            self.forget(key)
            return True
        self.counts[key] = count
        self.due[key] = now + RETRY_SECONDS[min(count, len(RETRY_SECONDS)) - 1]
        return False

    def first(self, key: str) -> bool:
        return self.counts.get(key) == 1

    def forget(self, key: str) -> None:
        self.counts.pop(key, None)
        self.due.pop(key, None)

    def next_due(self) -> float | None:
        return min(self.due.values(), default=None)


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:32]


def reason_of(exc: BaseException) -> str:
    """Why, for operators and the quarantined copy's header: one short ASCII line."""
    detail = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return text.encode("ascii", "replace").decode()[:200]


def marked(raw: bytes, key: str, reason: str) -> bytes:
    """The mail with the headers that say it was set aside, and why, on top."""
    return f"{ID_HEADER}: {key}\r\nX-Gateway-Quarantine-Reason: {reason}\r\n".encode() + raw


def notice(raw: bytes, key: str, reason: str, where: str, channel: str) -> Inbound:
    """What operators see of a mail set aside: who sent it (when that can be read),
    why it was set aside, where it is kept, and the original, attached. Marked as
    automated: nothing answers it on its own; an operator may."""
    name, address = "", ""
    try:
        mail = parse.parse(raw)
        name, address = mail.sender_name, mail.sender_address
    except Exception:
        pass
    if not ADDRESS.match(address) or len(address) > 254:
        name, address = "Unreadable mail", UNREADABLE
    return Inbound(
        channel=channel,
        event_id=f"quarantine:{key}",
        chat_id=address,
        sender=Sender(address, (name or address)[:128]),
        text=f"⚠ A mail could not be read ({reason}). It is kept in {where}; the original "
        "is attached.",
        attachments=(
            Attachment(
                kind="document",
                file_ref=f"quarantine:{key}#raw",
                name="original.eml",
                mime="message/rfc822",
                size=len(raw),
                origin=channel,
            ),
        ),
        automated=True,
    )


def unreadable(inbound: Inbound) -> Inbound:
    """The same note from nobody in particular: when even the sender's own
    conversation refused it."""
    return Inbound(
        channel=inbound.channel,
        event_id=f"{inbound.event_id}:unreadable",
        chat_id=UNREADABLE,
        sender=Sender(UNREADABLE, "Unreadable mail"),
        text=inbound.text,
        attachments=inbound.attachments,
        automated=True,
    )
