"""Customers' mailboxes for the demo and for trying a config: a real SMTP server on
loopback (aiosmtpd) that keeps every mail the gateway sends, and a way for a
customer to write to the gateway (SMTP to its listener, ``inbound = "smtp"``)."""

from __future__ import annotations

import asyncio
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session


class MailSandbox:
    """The outside world's mail servers, as far as the gateway's SMTP goes."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.received: list[EmailMessage] = []
        self._server: asyncio.Server | None = None
        self.arrived = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        self.received.append(message_from_bytes(raw, policy=policy.default))
        self.arrived.set()
        return "250 OK"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def protocol() -> Any:
            return SMTP(self, hostname="mail.sandbox", enable_SMTPUTF8=True, loop=loop)

        self._server = await loop.create_server(protocol, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def inbox(self, address: str) -> list[EmailMessage]:
        return [m for m in self.received if address.lower() in str(m["To"]).lower()]

    @staticmethod
    async def write(
        to_port: int,
        *,
        sender: tuple[str, str],
        to: str,
        subject: str,
        text: str,
        host: str = "127.0.0.1",
        headers: dict[str, str] | None = None,
    ) -> EmailMessage:
        """A customer's mail, handed to the gateway's SMTP listener."""
        message = EmailMessage()
        message["From"] = formataddr(sender)
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain=sender[1].rpartition("@")[2] or "sandbox")
        for key, value in (headers or {}).items():
            message[key] = value
        message.set_content(text)
        await aiosmtplib.send(message, hostname=host, port=to_port)
        return message


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""
