"""The ``[email]`` section."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class EmailSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: what an operator's id here looks like (``operators[].ids.email``): an address
    operator_id: ClassVar[tuple[str, str]] = (ADDRESS.pattern, "anna@example.com")

    #: the support address customers write to (and replies come from)
    address: str
    #: the name in From: "Support", or "Anna (Support)" on an operator's reply
    display_name: str = Field(default="Support", min_length=1, max_length=64)
    #: how customers' mail arrives: "imap", read from a mailbox; or "smtp", handed to
    #: the gateway's own SMTP listener by your mail server (or straight from the
    #: senders, with the MX record pointing at it)
    inbound: Literal["imap", "smtp"] = "imap"
    imap_host: str | None = None
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_user: str | None = None
    imap_password: SecretStr | None = None
    #: TLS from the first byte (port 993); false for a plain connection (tests only)
    imap_ssl: bool = True
    imap_folder: str = "INBOX"
    #: where processed mail is moved; without it, processed mail is marked \Seen
    processed_folder: str | None = None
    #: where a mail that cannot be taken in (after a few tries) is moved, with
    #: X-Gateway-Quarantine-Reason saying why; operators get a note with it attached
    quarantine_folder: str = Field(default="Quarantine", min_length=1, max_length=200)
    smtp_host: str
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    #: how often to look for mail when the server has no IDLE, and after a reconnect
    poll_seconds: float = Field(default=60, gt=0, le=3600)
    #: larger files are not sent along, and operators are told
    max_attachment_mb: float = Field(default=20, gt=0, le=100)
    #: inbound = "smtp": where the listener takes mail, and where the mails it took
    #: are kept (their attachments are read from there when another channel needs them)
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=2525, ge=0, le=65535)
    spool_dir: str = "mail-spool"
    #: inbound = "smtp": larger mails are refused (552) at the door
    max_message_mb: float = Field(default=30, gt=0, le=200)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not ADDRESS.match(value):
            raise ValueError("not an email address")
        return value.lower()

    @model_validator(mode="after")
    def _smtp_auth(self) -> EmailSection:
        if (self.smtp_user is None) != (self.smtp_password is None):
            raise ValueError("smtp_user and smtp_password go together (or neither, for no login)")
        if self.inbound == "imap":
            missing = [
                name
                for name in ("imap_host", "imap_user", "imap_password")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    f'inbound = "imap" needs {", ".join(missing)} (or inbound = "smtp")'
                )
        return self
