"""What every config section stands on: unknown keys refused, several problems
reported at once with their key paths, and the checks ids, languages and time
zones share."""

from __future__ import annotations

import re
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict

LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
OPERATOR_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


class Problems(ValueError):
    """Several independent problems found by one validator, each with its key path."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items = items
        super().__init__("; ".join(f"{path}: {reason}" for path, reason in items))


def check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone (use an IANA name such as Europe/Berlin)") from None
    return value


#: an IANA time zone name, checked against the system's zone database
ZoneName = Annotated[str, AfterValidator(check_zone)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_slug(value: str) -> str:
    """Ids admins choose (operators, FAQ entries): safe in logs, commands and refs."""
    if not OPERATOR_ID_RE.match(value):
        raise ValueError("use lowercase letters, digits, '.', '_' or '-' (at most 64)")
    return value


def check_language(value: str) -> str:
    if not LANGUAGE_RE.match(value):
        raise ValueError("not a language code (use e.g. en, ru, uk, pt-BR)")
    return value
