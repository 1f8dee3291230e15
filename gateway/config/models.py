"""The config tree. Every model forbids unknown keys: a typo is an error, not a no-op."""

from __future__ import annotations

import re
from datetime import datetime
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from gateway.config.base import (
    SUPPORTED_DRIVERS,
    Problems,
    Section,
    ZoneName,
    check_language,
    check_slug,
)
from gateway.config.replies import TEXT_PLACEHOLDERS, FaqSection, TextsSection
from gateway.config.workbench import SavedReply, TagsSection, check_replies
from gateway.hours import Schedule, ScheduleError


class GatewaySection(Section):
    database_url: str = "sqlite+aiosqlite:///gateway.db"
    timezone: ZoneName = "UTC"
    default_language: str = "en"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: "text": readable lines; "json": one JSON object per line (for log shippers)
    log_format: Literal["text", "json"] = "text"
    shutdown_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    #: how often the config file is checked for changes (faq, texts, operators and
    #: routing apply at once); 0 turns the watching off
    reload_seconds: float = Field(default=2.0, ge=0, le=3600)
    #: how often due deadlines (SLA, auto-close, snooze, opening) are looked for
    tick_seconds: float = Field(default=10.0, gt=0, le=3600)

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL ({exc})") from None
        driver = f"{url.get_backend_name()}+{url.get_driver_name()}"
        if driver not in SUPPORTED_DRIVERS:
            raise ValueError(
                f"driver {driver!r} is not supported: use sqlite+aiosqlite:///PATH "
                "or postgresql+asyncpg://USER@HOST/DB"
            )
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            raise ValueError("SQLite needs a file path (an in-memory database loses everything)")
        return value

    @field_validator("default_language")
    @classmethod
    def _language(cls, value: str) -> str:
        return check_language(value)

    @property
    def shown_database_url(self) -> str:
        """``database_url`` as the CLI and logs may show it: never with its password."""
        return make_url(self.database_url).render_as_string(hide_password=True)


def _schedule(
    zone: str, week: dict[str, str], holidays: list[str], *, key: str, always: bool = False
) -> Schedule:
    """A schedule from config values, its errors named by key (``schedule.mon-fri``)."""
    try:
        return Schedule.parse(zone, week, holidays, always=always)
    except ScheduleError as exc:
        where = "holidays" if exc.key == "holidays" else (f"{key}.{exc.key}" if exc.key else key)
        raise Problems([(where, str(exc))]) from None


class RoutingSection(Section):
    strategy: Literal["least_busy", "round_robin", "manual"] = "least_busy"
    default_max_chats: int = Field(default=4, ge=1, le=100)
    sticky_hours: float = Field(default=72, ge=0)
    reopen_hours: float = Field(default=24, ge=0)
    #: only route to operators who list the conversation's language
    match_language: bool = False
    #: presence of an operator the gateway has never seen before
    initial_presence: Literal["online", "away", "offline"] = "online"
    #: an operator away or offline this long has their conversations put back in the
    #: queue for someone else; 0 keeps them waiting for their operator
    requeue_away_minutes: float = Field(default=0, ge=0, le=7 * 24 * 60)
    #: a reply from someone other than the assignee, this soon after the assignee
    #: last wrote (or took the conversation), is held until its writer confirms:
    #: send anyway, take over, or cancel; 0 sends it at once
    collision_minutes: float = Field(default=5, ge=0, le=24 * 60)


class HoursSection(Section):
    """When the desk is open. No schedule means around the clock."""

    #: the schedule's zone; default: gateway.timezone
    timezone: ZoneName | None = None
    always_open: bool = False
    #: days -> times, e.g. { mon-fri = "09:00-18:00", sat = "10:00-14:00" }
    schedule: dict[str, str] = Field(default_factory=dict)
    #: dates the desk is closed: "2026-12-25", or "2026-12-24..2026-12-26"
    holidays: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _readable(self) -> HoursSection:
        if self.always_open and (self.schedule or self.holidays):
            raise Problems(
                [("always_open", "is true, so the schedule and holidays would never apply")]
            )
        self.build("UTC")
        return self

    def build(self, default_zone: str) -> Schedule:
        zone = self.timezone or default_zone
        if self.always_open or not (self.schedule or self.holidays):
            return Schedule.around_the_clock(zone)
        # holidays alone: open around the clock except on them
        week = self.schedule or {"mon-sun": "00:00-24:00"}
        return _schedule(zone, week, self.holidays, key="schedule")


class SlaSection(Section):
    """Response targets. Every waiting customer has a deadline: the assignee is
    reminded before it, and at it the team is pinged or the conversation moves on."""

    #: the first operator answer, counted from the customer's first message (0: none)
    first_response_minutes: float = Field(default=30, ge=0, le=30 * 24 * 60)
    #: each later answer, counted from the customer's first unanswered message
    next_response_minutes: float = Field(default=120, ge=0, le=30 * 24 * 60)
    #: count only the desk's open hours (a message at night is due the next morning)
    business_hours: bool = True
    #: remind the assignee in the thread this long before the deadline (0: never)
    remind_before_minutes: float = Field(default=5, ge=0, le=24 * 60)
    #: at the deadline: mention every online operator, or give the conversation to
    #: the next free operator (pinging when nobody is free)
    on_breach: Literal["ping", "reassign"] = "ping"
    #: tell a waiting customer "we are still on it" after this long (0: never)
    customer_update_minutes: float = Field(default=20, ge=0, le=30 * 24 * 60)
    #: resolve a conversation waiting this long for the customer's answer (0: never)
    auto_close_hours: float = Field(default=48, ge=0, le=365 * 24)


class CsatSection(Section):
    """Satisfaction: after every close the customer may rate 1-5 and add a comment."""

    enabled: bool = True
    #: after the score, ask for a comment in one message
    ask_comment: bool = True
    #: how long after the close a 1-5 answer counts as the score
    rating_hours: float = Field(default=24, gt=0, le=30 * 24)
    #: how long after the score the next message counts as the comment
    comment_minutes: float = Field(default=30, gt=0, le=24 * 60)


class OperatorConfig(Section):
    id: str
    name: str = Field(min_length=1, max_length=64)
    #: the operator's id on each channel, by the channel's name, as its adapter
    #: reports senders: { telegram = "123456", slack = "U024BE7LH", email = "a@b.c" }.
    #: A new channel needs nothing more here.
    ids: dict[str, str] = Field(default_factory=dict)
    #: the same for the first three channels, as configs have always written them
    #: (each is copied into ``ids``)
    telegram_id: int | None = None
    slack_id: str | None = None
    email: str | None = None
    max_chats: int | None = Field(default=None, ge=1, le=100)
    languages: list[str] = Field(default_factory=list)
    #: when this operator works, e.g. { mon-thu = "08:00-16:00" }; none: any time.
    #: Routing only gives new conversations to operators on shift.
    shifts: dict[str, str] = Field(default_factory=dict)
    #: the shifts' zone; default: the desk's ([hours] timezone, else gateway.timezone)
    timezone: ZoneName | None = None

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        return check_slug(value)

    @model_validator(mode="after")
    def _shifts(self) -> OperatorConfig:
        if self.shifts:
            _schedule("UTC", self.shifts, [], key="shifts")
        return self

    @field_validator("slack_id")
    @classmethod
    def _slack(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[UW][A-Z0-9]{2,}$", value):
            raise ValueError("a Slack user id looks like U024BE7LH")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError("not an email address")
        return value.lower() if value else value

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        return [check_language(v) for v in value]

    @model_validator(mode="before")
    @classmethod
    def _ids(cls, data: Any) -> Any:
        """``telegram_id``, ``slack_id`` and ``email`` into ``ids``, which may not say
        otherwise."""
        if not isinstance(data, dict):
            return data
        ids = dict(data.get("ids") or {})
        for key, channel in _LEGACY_IDS:
            value = data.get(key)
            if value is None:
                continue
            written = str(value).lower() if key == "email" else str(value)
            if ids.setdefault(channel, written) != written:
                raise ValueError(f"ids.{channel} ({ids[channel]}) and {key} ({value}) disagree")
        return {**data, "ids": ids}

    def identity(self, channel: str) -> str | None:
        """This operator's id on a platform, as adapters report senders (a string)."""
        return self.ids.get(channel)

    def written_id(self, channel: str) -> tuple[str, object]:
        """The key an admin wrote this operator's id on ``channel`` under, and the
        value as written there: a problem names what is in the file."""
        for key, named in _LEGACY_IDS:
            if named == channel and getattr(self, key) is not None:
                return key, getattr(self, key)
        return f"ids.{channel}", self.ids.get(channel)


#: the id keys an operator's table has always had, and their channels
_LEGACY_IDS = (("telegram_id", "telegram"), ("slack_id", "slack"), ("email", "email"))


class PrivacySection(Section):
    """How long what people wrote is kept. 0: until erased."""

    #: the words of messages older than this, in finished conversations, are
    #: removed (the conversations' times, states and scores stay: reports add up)
    keep_messages_days: int = Field(default=0, ge=0, le=36500)
    #: the references of files older than this are removed
    keep_files_days: int = Field(default=0, ge=0, le=36500)
    #: masked in what customers write, before it is stored or shown: "card" (card
    #: numbers, Luhn-checked) and regular expressions
    redact: list[str] = Field(default_factory=list)

    @field_validator("redact")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for rule in value:
            if rule == "card":
                continue
            try:
                compiled = re.compile(rule)
            except re.error as exc:
                raise ValueError(f"{rule!r} is not a regular expression ({exc})") from None
            if compiled.match(""):
                raise ValueError(f"{rule!r} matches an empty text: it would hide nothing useful")
        return value


class OutboxSection(Section):
    max_attempts: int = Field(default=10, ge=1, le=100)
    base_delay_seconds: float = Field(default=1.0, gt=0, le=3600)
    max_delay_seconds: float = Field(default=300.0, gt=0, le=86400)
    #: deliveries in flight per destination at once (an adapter may allow fewer,
    #: ``Adapter.max_in_flight``)
    concurrency: int = Field(default=16, ge=1, le=256)


class CoreConfig(Section):
    gateway: GatewaySection = GatewaySection()
    routing: RoutingSection = RoutingSection()
    hours: HoursSection = HoursSection()
    sla: SlaSection = SlaSection()
    csat: CsatSection = CsatSection()
    operators: Annotated[list[OperatorConfig], Field(default_factory=list)]
    texts: TextsSection = TextsSection()
    faq: FaqSection = FaqSection()
    replies: Annotated[list[SavedReply], Field(default_factory=list)]
    tags: TagsSection = TagsSection()
    privacy: PrivacySection = PrivacySection()
    outbox: OutboxSection = OutboxSection()

    @model_validator(mode="after")
    def _unique_operators(self) -> CoreConfig:
        problems = []
        seen_ids: dict[str, int] = {}
        for index, op in enumerate(self.operators):
            if op.id in seen_ids:
                problems.append(
                    (
                        f"operators[{index}].id",
                        f"{op.id!r} is already used by operators[{seen_ids[op.id]}]",
                    )
                )
            seen_ids.setdefault(op.id, index)
        channels = sorted({channel for op in self.operators for channel in op.ids})
        for channel in channels:
            seen: dict[str, int] = {}
            for index, op in enumerate(self.operators):
                value = op.ids.get(channel)
                if value is None:
                    continue
                if value in seen:
                    key, shown = op.written_id(channel)
                    problems.append(
                        (
                            f"operators[{index}].{key}",
                            f"{shown!r} is already used by operators[{seen[value]}]",
                        )
                    )
                seen.setdefault(value, index)
        default = self.gateway.default_language
        for name in TEXT_PLACEHOLDERS:
            value = getattr(self.texts, name)
            if isinstance(value, dict) and default not in value:
                problems.append(
                    (
                        f"texts.{name}",
                        f"has no {default!r} variant, which "
                        "gateway.default_language needs as the fallback",
                    )
                )
        for index, entry in enumerate(self.faq.entries):
            if isinstance(entry.answer, dict) and default not in entry.answer:
                problems.append(
                    (
                        f"faq.entries[{index}].answer",
                        f"has no {default!r} variant, which gateway.default_language needs "
                        "as the fallback",
                    )
                )
        problems += check_replies(self.replies, default)
        if problems:
            raise Problems(problems)
        return self

    def saved_reply(self, name: str) -> SavedReply | None:
        wanted = name.strip().lower()
        return next((r for r in self.replies if r.name == wanted), None)

    def with_sections(self, **sections: object) -> CoreConfig:
        """A copy with some sections replaced, validated again. (``model_copy`` would
        carry over the cached schedule and shifts of the old sections.)"""
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self).model_validate({**fields, **sections})

    def max_chats(self, operator: OperatorConfig) -> int:
        return operator.max_chats or self.routing.default_max_chats

    @cached_property
    def schedule(self) -> Schedule:
        """The desk's business hours."""
        return self.hours.build(self.gateway.timezone)

    @cached_property
    def shifts(self) -> dict[str, Schedule]:
        """Operator id -> their shifts, for operators who have any."""
        zone = self.hours.timezone or self.gateway.timezone
        return {
            op.id: _schedule(op.timezone or zone, op.shifts, [], key="shifts")
            for op in self.operators
            if op.shifts
        }

    def on_shift(self, operator: OperatorConfig, at: datetime) -> bool:
        shifts = self.shifts.get(operator.id)
        return shifts is None or shifts.is_open(at)
