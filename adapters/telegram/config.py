"""The ``[telegram]`` section."""

from __future__ import annotations

from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from gateway.config.base import Problems


class TelegramSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the key that sets up the operators' workspace here, and how operators are named
    #: (``gateway.config.setup``)
    workspace_key: ClassVar[str] = "workspace_chat_id"
    operator_key: ClassVar[str] = "telegram_id"
    #: what an operator's id here looks like (``operators[].ids.telegram``): a user id
    operator_id: ClassVar[tuple[str, str]] = (r"^[1-9][0-9]{0,15}$", "123456789")

    #: from @BotFather; write token = "${TELEGRAM_TOKEN}"
    token: SecretStr
    #: the official server, a local Bot API server, or the sandbox
    api_base: str = "https://api.telegram.org"
    mode: Literal["polling", "webhook"] = "polling"
    #: public HTTPS address Telegram posts updates to (webhook mode)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    #: the path on the gateway's HTTP server that receives them; default: the path of
    #: webhook_url, the address Telegram posts to (see ``served_path``)
    webhook_path: str | None = None
    #: the operators' forum supergroup (a negative id like -1001234567890); omit when
    #: operators work on Slack only
    workspace_chat_id: int | None = None
    #: more bots sharing the operators' group, past one bot's 20 messages a minute
    #: there: each an admin of the group with the "Manage topics" right (write
    #: workspace_bots = ["${TELEGRAM_BOT_2}", ...]). Conversations are spread across
    #: them; customers still talk to the first bot only.
    workspace_bots: list[SecretStr] = Field(default_factory=list, max_length=32)
    poll_timeout_seconds: int = Field(default=25, ge=0, le=50)
    #: the Bot API's limits the gateway keeps under (Telegram's bots FAQ): messages a
    #: second in one chat, a minute in one group, a second in all. Lower them for a
    #: token shared with another program; raise them only for a local Bot API server
    #: or a sandbox without limits.
    chat_messages_per_second: float = Field(default=1.0, gt=0, le=10_000)
    group_messages_per_minute: float = Field(default=20, gt=0, le=1_000_000)
    messages_per_second: float = Field(default=30, gt=0, le=100_000)

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        _check_token(value)
        return value

    @field_validator("workspace_bots")
    @classmethod
    def _bot_tokens(cls, value: list[SecretStr]) -> list[SecretStr]:
        for token in value:
            _check_token(token)
        return value

    @field_validator("api_base")
    @classmethod
    def _base(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("workspace_chat_id")
    @classmethod
    def _group(cls, value: int | None) -> int | None:
        if value is not None and value >= 0:
            raise ValueError("a supergroup id is negative, like -1001234567890")
        return value

    @model_validator(mode="after")
    def _distinct_bots(self) -> TelegramSection:
        ids = [bot_id(t) for t in (self.token, *self.workspace_bots)]
        if len(set(ids)) != len(ids):
            raise ValueError("workspace_bots: each bot must be a different bot from token")
        if self.workspace_bots and self.workspace_chat_id is None:
            raise ValueError("workspace_bots share the workspace group: set workspace_chat_id")
        return self

    @model_validator(mode="after")
    def _webhook(self) -> TelegramSection:
        if self.mode == "webhook":
            if not self.webhook_url or not self.webhook_url.startswith(("https://", "http://")):
                raise ValueError("webhook mode needs webhook_url (the public https:// address)")
            if self.webhook_secret is None or len(self.webhook_secret.get_secret_value()) < 8:
                raise ValueError(
                    "webhook mode needs webhook_secret (8+ characters, e.g. ${TELEGRAM_SECRET})"
                )
            posted_to = _url_path(self.webhook_url)
            if self.webhook_path is not None and self.webhook_path != posted_to:
                # Telegram posts every update to webhook_url: served elsewhere, each one
                # would get a 404 and webhook mode would receive nothing at all
                raise Problems(
                    [
                        (
                            "webhook_path",
                            f"{self.webhook_path!r} is not the path of webhook_url "
                            f"({posted_to!r}), where Telegram posts the updates: leave "
                            "webhook_path out to serve webhook_url's path",
                        )
                    ]
                )
        return self

    @property
    def served_path(self) -> str:
        """The path the gateway serves webhook updates at: where Telegram posts them."""
        if self.webhook_path is not None:
            return self.webhook_path
        return _url_path(self.webhook_url or "")


def _url_path(url: str) -> str:
    return urlsplit(url).path or "/"


def bot_id(token: SecretStr) -> int:
    """The bot's id: the digits before the colon of its token."""
    return int(token.get_secret_value().partition(":")[0])


def _check_token(value: SecretStr) -> None:
    number, _, secret = value.get_secret_value().partition(":")
    if not number.isdigit() or not secret:
        raise ValueError("a bot token looks like 123456789:AAH..., as @BotFather gives it")
