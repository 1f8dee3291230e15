"""SMTP out (aiosmtplib): a reply composed as a mail in its thread (compose.py)
and handed to the relay; the relay's refusals read as temporary or permanent.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from email.utils import formataddr
from typing import Any

import aiosmtplib

from adapters.email.compose import compose
from adapters.email.config import EmailSection
from gateway.adapter import Host
from gateway.cards import file_line
from gateway.errors import (
    PermanentFailure,
    TemporaryFailure,
)
from gateway.events import Delivery, FileData, Receipt

log = logging.getLogger(__name__)


class SmtpDelivery:
    """Sending mail, for ``EmailAdapter``, which sets these up."""

    name: str
    section: EmailSection
    domain: str
    host: Host | None

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
