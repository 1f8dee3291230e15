"""Mail the gateway sends: threaded, with text and HTML parts, marked when automatic."""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from html import escape

from gateway.events import Delivery, FileData

#: subjects already carrying a reply prefix, in the languages customers write in
REPLY_PREFIXES = ("re:", "aw:", "sv:", "ответ:", "відповідь:", "fwd:", "fw:")


def subject_for(delivery: Delivery, token: str) -> str:
    subject = (delivery.subject or "").strip() or "Your request"
    if token not in subject:
        subject = f"{subject} {token}"
    if not subject.lower().startswith(REPLY_PREFIXES):
        subject = f"Re: {subject}"
    return subject


def compose(
    delivery: Delivery,
    *,
    address: str,
    display_name: str,
    to: str,
    domain: str,
    files: list[FileData] = (),  # type: ignore[assignment]
) -> EmailMessage:
    """One mail for one delivery to a customer."""
    out = delivery.outbound
    token = f"[#{out.conversation_id}]"
    mail = EmailMessage()
    sender = display_name
    if out.author_role == "operator" and out.author_name:
        sender = f"{out.author_name} ({display_name})"
    local, _, host = address.partition("@")
    mail["From"] = Address(sender, local, host)
    mail["To"] = to
    mail["Subject"] = subject_for(delivery, token)
    mail["Message-ID"] = make_msgid(domain=domain)
    mail["Date"] = format_datetime(_now())
    history = list(delivery.history)
    if delivery.replying_to:
        mail["In-Reply-To"] = delivery.replying_to
    if history:
        mail["References"] = " ".join(history[-20:])
    if out.author_role != "operator":
        # RFC 3834: our automatic answers say so, so other robots do not answer them
        mail["Auto-Submitted"] = "auto-replied"
        mail["X-Auto-Response-Suppress"] = "All"
    text = out.text
    if out.kind == "edit":
        text = f"A correction to our previous message:\n\n{text}"
    elif out.kind == "delete":
        text = "Please disregard our previous message; it was withdrawn."
    mail.set_content(text + "\n")
    body = "<br>\n".join(escape(line) for line in text.splitlines())
    mail.add_alternative(
        f'<!doctype html><html><body><div style="font-family:sans-serif">{body}</div>'
        "</body></html>\n",
        subtype="html",
    )
    for file in files:
        maintype, _, subtype = (file.mime or "application/octet-stream").partition("/")
        mail.add_attachment(
            file.data, maintype=maintype, subtype=subtype or "octet-stream", filename=file.name
        )
    return mail


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)
