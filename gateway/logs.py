"""Logging: one line per record, readable text or JSON, carrying the conversation id
and channel where there is one, and scrubbed of every configured secret.

What is logged at info and above never holds a message's text: the gateway logs
that something happened to a conversation (opened, assigned, delivered), not what
anyone wrote.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

CONTEXT_FIELDS = ("conversation_id", "channel")


class SecretScrubber(logging.Filter):
    """Replaces every configured secret in a record with ``***``.

    Applied on the handler, so it also covers libraries that log URLs with tokens in
    them (the Bot API puts the token in the path).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: tuple[str, ...] = ()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        # longest first, so a secret containing another is replaced whole
        self.secrets = tuple(sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            scrubbed = self.scrub(message)
            if scrubbed != message:
                record.msg, record.args = scrubbed, None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.scrub(record.exc_text)
        return True


class ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{name}={getattr(record, name)}"
            for name in CONTEXT_FIELDS
            if getattr(record, name, None) is not None
        )
        return f"{line} [{context}]" if context else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers (Loki, Elasticsearch, CloudWatch)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


#: libraries kept at warning whatever the level: their info and debug lines carry
#: what people wrote (aiosmtpd logs each mail's sender and size, slack-bolt a
#: refused request's body, aioimaplib and aiosmtplib the protocol lines), or are
#: chatter (APScheduler logs every tick: the gateway logs what a tick did instead)
QUIET_LIBRARIES = (
    "aiosqlite",
    "asyncio",
    "sqlalchemy.engine",
    "alembic",
    "apscheduler",
    "mail.log",
    "aioimaplib",
    "aiosmtplib",
    "slack_bolt",
    "slack_sdk",
)
#: and these at error: slack-bolt warns of an unhandled request with its body
QUIETER_LIBRARIES = ("adapters.slack.bolt",)


def setup_logging(
    level: str, secrets: Iterable[str] = (), *, json_lines: bool = False
) -> SecretScrubber:
    handler = logging.StreamHandler()
    scrubber = SecretScrubber(secrets)
    handler.addFilter(scrubber)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else ContextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in QUIET_LIBRARIES:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for noisy in QUIETER_LIBRARIES:
        logging.getLogger(noisy).setLevel(max(logging.ERROR, root.level))
    return scrubber
