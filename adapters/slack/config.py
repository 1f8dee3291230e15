"""The ``[slack]`` section."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


class SlackSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the key that sets up the operators' workspace here, and how operators are named
    #: (``gateway.config.setup``)
    workspace_key: ClassVar[str] = "workspace_channel"
    operator_key: ClassVar[str] = "slack_id"
    #: what an operator's id here looks like (``operators[].ids.slack``), with an example
    operator_id: ClassVar[tuple[str, str]] = (r"^[UW][A-Z0-9]{2,}$", "U024BE7LH")

    #: the bot token (xoxb-...), from the app's OAuth page; write "${SLACK_BOT_TOKEN}"
    bot_token: SecretStr
    #: socket: the gateway connects out to Slack (no public address needed);
    #: http: Slack posts events to the gateway's HTTP server at events_path
    mode: Literal["socket", "http"] = "socket"
    #: the app-level token (xapp-..., scope connections:write), for socket mode
    app_token: SecretStr | None = None
    #: the app's signing secret, for http mode: every request is verified with it
    signing_secret: SecretStr | None = None
    events_path: str = "/slack/events"
    #: the operators' channel (an id like C0123456789); omit when operators work in
    #: Telegram only
    workspace_channel: str | None = None
    #: shared or Slack Connect channels whose members are customers
    customer_channels: list[str] = Field(default_factory=list)
    #: the slash command operators use for what is not about one conversation:
    #: "/support online", "/support away", "/support offline", "/support status"
    slash_command: str = "/support"
    #: the Web API's address (slack_sdk's base_url); the sandbox's, in tests
    api_base: str = "https://slack.com/api/"
    #: socket mode: how often the connection is checked, and redone when it died
    ping_interval_seconds: float = Field(default=10.0, gt=0, le=300)

    @field_validator("bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("a bot token starts with xoxb- (OAuth & Permissions page)")
        return value

    @field_validator("app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("an app-level token starts with xapp- (Basic Information page)")
        return value

    @field_validator("workspace_channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None and not CHANNEL_ID.match(value):
            raise ValueError(
                "use the channel's id (like C0123456789: channel details, at the bottom), "
                "not its name"
            )
        return value

    @field_validator("customer_channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        for item in value:
            if not CHANNEL_ID.match(item):
                raise ValueError(f"{item!r} is not a channel id (like C0123456789)")
        return value

    @field_validator("api_base")
    @classmethod
    def _base(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") + "/"

    @field_validator("slash_command")
    @classmethod
    def _command(cls, value: str) -> str:
        if not re.fullmatch(r"/[a-z0-9_-]{1,31}", value):
            raise ValueError("a slash command looks like /support (lowercase, at most 32)")
        return value

    @field_validator("events_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("a path starts with /")
        return value

    @model_validator(mode="after")
    def _mode(self) -> SlackSection:
        if self.mode == "socket" and self.app_token is None:
            raise ValueError("socket mode needs app_token (xapp-..., e.g. ${SLACK_APP_TOKEN})")
        if self.mode == "http" and (
            self.signing_secret is None or len(self.signing_secret.get_secret_value()) < 8
        ):
            raise ValueError(
                "http mode needs signing_secret (Basic Information page, e.g. "
                "${SLACK_SIGNING_SECRET})"
            )
        if self.workspace_channel and self.workspace_channel in self.customer_channels:
            raise ValueError("workspace_channel cannot also be one of customer_channels")
        return self
