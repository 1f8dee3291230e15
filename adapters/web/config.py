"""The ``[web]`` section: the chat widget a site embeds with one script tag."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
#: what visitors may attach unless the admin says otherwise: pictures and documents
#: a browser shows or an office suite opens, nothing that runs
DEFAULT_FILE_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)


class WebSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the sites allowed to embed the widget, as origins ("https://shop.example.com");
    #: a request from any other (its Origin header) is refused
    origins: list[str] = Field(min_length=1)
    #: the panel's title and its colour
    title: str = Field(default="Support", min_length=1, max_length=64)
    colour: str = "#2563eb"
    #: which corner the launcher sits in
    position: Literal["right", "left"] = "right"
    #: where the gateway is reached from the browser, when it differs from where the
    #: script was loaded from (a CDN): "https://support.example.com"
    public_url: str | None = None
    #: for sites whose visitors are signed in: the key the site signs a user's id
    #: with (HMAC-SHA256, hex), so a visitor sees that user's history only with the
    #: site's signature; write "${WEB_IDENTITY_SECRET}"
    identity_secret: SecretStr | None = None
    #: only signed-in users may chat (needs identity_secret)
    require_identity: bool = False
    #: when the widget asks for a name and address (so an answer can go by email):
    #: "busy", after the first message when nobody is free or the desk is closed;
    #: "always", after the first message; "never"
    ask_contact: Literal["busy", "always", "never"] = "busy"
    #: an operator's reply goes by email (to the address the visitor left) when the
    #: visitor has not had the widget open for this long
    email_after_minutes: float = Field(default=3, ge=0, le=1440)
    #: longer messages are refused, and the visitor told
    max_text_chars: int = Field(default=4000, ge=100, le=20000)
    #: what visitors may attach, by size and by type
    max_file_mb: float = Field(default=10, gt=0, le=50)
    file_types: list[str] = Field(default_factory=lambda: list(DEFAULT_FILE_TYPES))
    #: where visitors' files are kept (operators' copies are on their platform)
    files_dir: str = "web-files"
    #: per visitor: messages (and files) a minute
    messages_per_minute: int = Field(default=20, ge=1, le=600)
    #: per address: requests a minute (every call the widget makes), and new
    #: visitors an hour
    requests_per_minute: int = Field(default=300, ge=10, le=100000)
    visitors_per_hour: int = Field(default=30, ge=1, le=100000)
    #: behind a reverse proxy: take the visitor's address from X-Forwarded-For (the
    #: last hop the proxy added); else it is the connection's
    trust_forwarded: bool = False

    @field_validator("origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        out = []
        for value in values:
            parts = urlsplit(value)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.path not in ("", "/")
                or parts.query
                or parts.fragment
            ):
                raise ValueError(
                    f"{value!r} is not an origin: write scheme and host, as "
                    '"https://shop.example.com" (a port if not the usual one)'
                )
            out.append(f"{parts.scheme}://{parts.netloc.lower()}")
        return out

    @field_validator("colour")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not COLOUR.match(value):
            raise ValueError('a colour as "#rrggbb"')
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError('an address like "https://support.example.com"')
        return value.rstrip("/")

    @field_validator("file_types")
    @classmethod
    def _types(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.match(r"^[a-z0-9.+-]+/[a-z0-9.+*-]+$", value):
                raise ValueError(f'{value!r} is not a media type ("image/png", "image/*")')
        return values

    def takes_type(self, mime: str) -> bool:
        major = mime.split("/", 1)[0]
        return mime in self.file_types or f"{major}/*" in self.file_types

    @model_validator(mode="after")
    def _identity(self) -> WebSection:
        if self.require_identity and self.identity_secret is None:
            raise ValueError("require_identity needs identity_secret")
        return self
