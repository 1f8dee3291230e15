"""A raw mail in the core's terms, with the standard library's email package.

Pure functions, no network: every shape of mail can be tested directly. Nothing in
here raises on a broken mail; what can be read is returned, and ``damaged`` says
that something could not be.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

from gateway.language import detect as detect_language

#: undeclared 8-bit that is not UTF-8 (in a header, or a part whose declared charset
#: is missing or wrong): the likeliest of these wins (``_plausibility``), the
#: earlier on a tie
GUESSED_CHARSETS = ("cp1251", "koi8-r", "koi8-u", "latin-1")
SURROGATE = re.compile("[\ud800-\udfff]")
#: senders that are robots whatever their headers say (RFC 3834 and common use)
ROBOT_SENDER = re.compile(
    r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|bounces?)([+.\-][^@]*)?@", re.I
)
TOKEN = re.compile(r"\[#(\d{1,12})\]")
MESSAGE_ID = re.compile(r"<[^<>\s]+>")


@dataclass
class MailPart:
    """An attachment or inline image: its place in the mail, to fetch it later."""

    index: int
    name: str
    mime: str
    size: int
    inline: bool = False


@dataclass
class ParsedMail:
    message_id: str | None
    sender_name: str
    sender_address: str
    subject: str
    text: str  # what operators see: quoted history and signature stripped
    full_text: str  # the whole body as written
    references: tuple[str, ...] = ()  # In-Reply-To last, as the most recent
    token: int | None = None
    sent_at: datetime | None = None
    parts: list[MailPart] = field(default_factory=list)
    #: the writer's language: Content-Language, else a guess from the script
    language: str | None = None
    automated: bool = False
    bounce: bool = False
    #: for a bounce: the Message-ID of the mail that could not be delivered
    bounced_id: str | None = None
    bounce_reason: str = ""
    damaged: list[str] = field(default_factory=list)


def parse(raw: bytes, *, own_address: str = "") -> ParsedMail:
    message = message_from_bytes(raw, policy=policy.default)
    damaged: list[str] = []
    declared = tuple(c for c in message.get_charsets() if c)
    if message.defects:
        damaged.append(", ".join(type(d).__name__ for d in message.defects[:3]))
    name, address = _sender(message, damaged, declared)
    subject = _header(message, "subject", damaged, declared)
    body, parts = _body(message, damaged, declared)
    full = body.strip()
    references = _ids(_header(message, "references", damaged)) + _ids(
        _header(message, "in-reply-to", damaged)
    )
    bounce, bounced, reason = _bounce(message, damaged)
    return ParsedMail(
        message_id=(_ids(_header(message, "message-id", damaged)) or (None,))[0],
        sender_name=name,
        sender_address=address,
        subject=subject.strip(),
        text=strip_quotes(full) or full,
        full_text=full,
        references=tuple(dict.fromkeys(references)),
        token=int(m.group(1)) if (m := TOKEN.search(subject)) else None,
        sent_at=_date(message),
        parts=parts,
        language=_language(message, full or subject),
        automated=bounce or is_automated(message, address, own_address),
        bounce=bounce,
        bounced_id=bounced,
        bounce_reason=reason,
        damaged=damaged,
    )


def _language(message: Message, text: str) -> str | None:
    """Content-Language when it is given; otherwise what the text itself says
    (``gateway.language``), or nothing (the default)."""
    declared = str(message.get("content-language") or "").split(",")[0].strip().lower()
    if re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})?", declared):
        return declared.split("-")[0]
    return detect_language(text)


def _header(message: Message, name: str, damaged: list[str], declared: tuple[str, ...] = ()) -> str:
    try:
        value = _parsed_header(message, name, declared)
        return no_surrogates(str(value)) if value is not None else ""
    except Exception as exc:  # a header the policy cannot decode: read it raw
        damaged.append(f"{name}: {type(exc).__name__}")
        return readable(_raw_header(message, name) or "", declared)


def _raw_header(message: Message, name: str) -> str | None:
    return next((v for k, v in message.raw_items() if k.lower() == name), None)


def _parsed_header(message: Message, name: str, declared: tuple[str, ...]) -> Any:
    """The header as the policy parses it (encoded words decoded, addresses split);
    undeclared 8-bit bytes in it are first read in their charset (``readable``),
    which the policy would keep as surrogates or drop."""
    raw = _raw_header(message, name)
    if raw is None:
        return None
    if SURROGATE.search(raw):
        return policy.default.header_fetch_parse(name, readable(raw, declared))
    return message.get(name)


def readable(value: str, declared: tuple[str, ...] = ()) -> str:
    """A header as mail clients show it. The email package keeps undeclared 8-bit
    bytes as surrogates (which no database takes); they are read as UTF-8 (RFC 6532
    headers), else in the charsets the mail declares for its parts, else in the
    likeliest of ``GUESSED_CHARSETS``. Never returns a surrogate."""
    if not SURROGATE.search(value):
        return value
    return decoded(value.encode("utf-8", "surrogateescape"), ("utf-8", *declared))


def decoded(raw: bytes, charsets: Sequence[str]) -> str:
    """Bytes in the first of ``charsets`` they are valid in, else in the likeliest
    of ``GUESSED_CHARSETS``."""
    for charset in charsets:
        try:
            return raw.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    guesses: list[tuple[int, int, str]] = []
    for rank, charset in enumerate(GUESSED_CHARSETS):
        try:
            text = raw.decode(charset)
        except UnicodeDecodeError:
            continue
        guesses.append((_plausibility(text), -rank, text))
    return max(guesses)[2] if guesses else raw.decode("utf-8", errors="replace")


def _plausibility(text: str) -> int:
    """How much a decoding reads like words: letter pairs of one script whose second
    is lower case (words are mostly lower case after their first letter). A wrong
    Cyrillic charset swaps the cases; Latin-1 turns Cyrillic into accented letters
    only, so Latin pairs count only with an unaccented letter in them."""
    score = 0
    for first, second in itertools.pairwise(text):
        if not (first.isalpha() and second.isalpha() and second.islower()):
            continue
        cyrillic = ("\u0400" <= first <= "\u04ff", "\u0400" <= second <= "\u04ff")
        if all(cyrillic):
            score += 1
        elif not any(cyrillic) and (first.isascii() or second.isascii()):
            score += 1
    return score


def no_surrogates(text: str) -> str:
    """The last guard before the database: a surrogate left anywhere becomes U+FFFD."""
    return SURROGATE.sub("\ufffd", text) if SURROGATE.search(text) else text


def _sender(message: Message, damaged: list[str], declared: tuple[str, ...]) -> tuple[str, str]:
    raw = _header(message, "from", damaged, declared)
    pairs = getaddresses([raw])
    name, address = pairs[0] if pairs else ("", "")
    try:
        header = _parsed_header(message, "from", declared)
        if header is not None and getattr(header, "addresses", None):
            first = header.addresses[0]
            name, address = first.display_name or name, first.addr_spec or address
    except Exception:
        pass
    return readable(name, declared).strip(), no_surrogates(address).strip().lower()


def _ids(value: str) -> tuple[str, ...]:
    return tuple(MESSAGE_ID.findall(value or ""))


def _date(message: Message) -> datetime | None:
    try:
        value = parsedate_to_datetime(str(message.get("date") or ""))
    except (TypeError, ValueError, IndexError):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


#: headers only mailing lists and bulk senders set (RFC 2369, RFC 2919)
LIST_HEADERS = ("list-id", "list-unsubscribe", "list-post", "list-help", "list-owner")


def is_automated(message: Message, sender: str, own_address: str) -> bool:
    """Mail a robot sent, which no robot should answer: RFC 3834's Auto-Submitted,
    the list and bulk markers, an empty Return-Path (bounces), reports (RFC 6522:
    delivery status, read receipts, abuse feedback), auto-replies' own headers, and
    the senders that are robots by name (mailer-daemon@, postmaster@, no-reply@)."""
    auto = _plain(message, "auto-submitted") or "no"
    precedence = _plain(message, "precedence")
    return_path = _plain(message, "return-path", keep_empty=True)
    return (
        auto.lower() != "no"
        or precedence.lower() in ("bulk", "list", "junk", "auto_reply")
        or any(message.get(name) is not None for name in LIST_HEADERS)
        or return_path in ("<>", "")
        or message.get_content_type() == "multipart/report"
        or any(
            message.get(name) is not None
            for name in ("x-autoreply", "x-autorespond", "x-auto-response-suppress")
        )
        or bool(ROBOT_SENDER.match(sender))
        or (bool(own_address) and sender == own_address.lower())
    )


def _plain(message: Message, name: str, *, keep_empty: bool = False) -> str:
    """A header's value stripped; "" when absent (None-like "-" for keep_empty)."""
    try:
        value = message.get(name)
    except Exception:
        return ""
    if value is None:
        return "-" if keep_empty else ""
    return no_surrogates(str(value)).strip()


def decode_part(part: Message) -> str:
    """A text part's content, whatever its declared charset says (or gets wrong)."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(part.get_payload() or "")
    declared = part.get_content_charset()
    return decoded(payload, ((declared,) if declared else ()) + ("utf-8",))


def _body(
    message: Message, damaged: list[str], declared: tuple[str, ...] = ()
) -> tuple[str, list[MailPart]]:
    plain: str | None = None
    html: str | None = None
    parts: list[MailPart] = []
    for index, part in enumerate(message.walk()):
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = str(part.get("content-disposition") or "").split(";")[0].strip().lower()
        filename = _filename(part, declared)
        if ctype in ("message/delivery-status", "message/rfc822", "text/rfc822-headers"):
            continue
        if disposition == "attachment" or ctype not in ("text/plain", "text/html"):
            payload = part.get_payload(decode=True)
            size = len(payload) if isinstance(payload, bytes) else 0
            name = filename or f"part-{index}.{ctype.split('/')[-1]}"
            parts.append(MailPart(index, name, ctype, size, inline=disposition == "inline"))
            continue
        try:
            text = decode_part(part)
        except Exception as exc:
            damaged.append(f"part {index}: {type(exc).__name__}")
            continue
        if ctype == "text/plain" and plain is None:
            plain = text
        elif ctype == "text/html" and html is None:
            html = text
    if plain is not None and plain.strip():
        return no_surrogates(plain), parts
    if html is not None:
        return no_surrogates(html_to_text(html)), parts
    return no_surrogates(plain or ""), parts


def _filename(part: Message, declared: tuple[str, ...] = ()) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    return readable(name, declared).strip() if name else None


def part_bytes(raw: bytes, index: int) -> bytes | None:
    """The decoded content of part ``index`` of a raw mail (for ``fetch``)."""
    message = message_from_bytes(raw, policy=policy.default)
    for number, part in enumerate(message.walk()):
        if number == index and not part.is_multipart():
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else None
    return None


class _TextOfHtml(HTMLParser):
    """Readable text from HTML: no tags, no scripts or styles, links kept."""

    BLOCK = frozenset(
        {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0
        self._href: str | None = None
        self._link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip += 1
        elif tag == "a":
            self._href = dict(attrs).get("href")
            self._link_text = []
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip = max(0, self._skip - 1)
        elif tag == "a" and self._href is not None:
            label = "".join(self._link_text).strip()
            href = self._href
            if (
                href.startswith(("http://", "https://", "mailto:"))
                and href.removeprefix("mailto:") != label
            ):
                self.out.append(f" ({href.removeprefix('mailto:')})")
            self._href = None
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.out.append(data)
        if self._href is not None:
            self._link_text.append(data)


def html_to_text(html: str) -> str:
    parser = _TextOfHtml()
    try:
        parser.feed(html)
        parser.close()
    except Exception:
        return re.sub(r"<[^>]+>", " ", html)
    text = "".join(parser.out)
    lines = [re.sub(r"[ \t\xa0]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


_QUOTE_HEADS = (
    re.compile(r"^On .{3,200} wrote:\s*$", re.IGNORECASE),
    re.compile(r"^-{2,}\s*Original Message\s*-{2,}", re.IGNORECASE),
    re.compile(r"^-{2,}\s*Исходное сообщение\s*-{2,}", re.IGNORECASE),
    re.compile(r"^\d{1,2}[./]\d{1,2}[./]\d{2,4}.{0,80}(пишет|писал|wrote)\S*:\s*$", re.IGNORECASE),
    re.compile(r"^From: .+", re.IGNORECASE),
    re.compile(r"^_{10,}$"),
)


def strip_quotes(text: str) -> str:
    """The new part of a reply: up to the quoted history or the signature."""
    kept: list[str] = []
    for line in text.splitlines():
        bare = line.strip()
        if line.rstrip("\r") == "-- " or bare in ("--", "—"):
            break  # the signature separator
        if any(p.match(bare) for p in _QUOTE_HEADS):
            break
        if bare.startswith(">"):
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


def _bounce(message: Message, damaged: list[str]) -> tuple[bool, str | None, str]:
    """A delivery report (RFC 3464): which of our mails failed, and why. Other
    reports (read receipts, RFC 8098) are not bounces: automated mail, shown."""
    if message.get_content_type() != "multipart/report":
        return False, None, ""
    kind = str(message.get_param("report-type") or "").lower()
    has_status = any(p.get_content_type() == "message/delivery-status" for p in message.walk())
    if kind != "delivery-status" and not has_status:
        return False, None, ""
    original: str | None = None
    reason = ""
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            text = _status_text(part)
            found = re.search(r"^Diagnostic-Code:\s*(?:smtp;)?\s*(.+)$", text, re.M | re.I)
            status = re.search(r"^Status:\s*(\S+)", text, re.M | re.I)
            reason = (found.group(1) if found else "") or (status.group(1) if status else "")
        elif ctype in ("message/rfc822", "text/rfc822-headers"):
            headers = _status_text(part)
            found = re.search(r"^Message-ID:\s*(<[^>]+>)", headers, re.M | re.I)
            if found:
                original = found.group(1)
    return True, original, reason.strip()


def _status_text(part: Message) -> str:
    """message/delivery-status and message/rfc822 parts hold header blocks."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n".join(str(p) for p in payload)
    if isinstance(payload, str):
        return payload
    return decode_part(part)


def new_message() -> EmailMessage:
    return EmailMessage(policy=policy.SMTP)
