"""Visitors' files: kept on disk under an unguessable key, with who sent them.

A file is taken only if its bytes are what its type says (a picture's signature,
a PDF's, text that decodes): a browser reports the type the file's name suggests,
and an operator opening "invoice.pdf" should get a PDF. What is kept is the file
and a small JSON beside it (who sent it, in which message); the conversation keeps
the key (``Attachment.file_ref``).

A file lives as long as its message carries it: an erase or the retention period
empties the message, and ``sweep`` (hourly) then deletes the file; one uploaded and
never sent goes after a day.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from adapters.web.config import WebSection
from adapters.web.guard import Refused
from gateway.errors import PermanentFailure
from gateway.events import Attachment, FileData

log = logging.getLogger(__name__)

KEY = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
#: a file uploaded and never sent in a message is kept this long
UNSENT_SECONDS = 24 * 3600.0
#: how many messages one sweep asks about at a time
SWEEP_BATCH = 500
_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/pdf": (b"%PDF-",),
    "application/zip": (b"PK\x03\x04",),
}
#: office documents are zip files
_ZIPPED = ("application/vnd.openxmlformats-officedocument.", "application/vnd.oasis.opendocument.")


def looks_like(mime: str, data: bytes) -> bool:
    """Whether ``data`` is plausibly of type ``mime``."""
    if mime == "image/webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if mime.startswith("text/"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return b"\x00" not in data
    if mime.startswith(_ZIPPED):
        mime = "application/zip"
    signatures = _SIGNATURES.get(mime)
    if signatures is None:
        return True  # a type the admin allowed and we have no signature for
    return data.startswith(signatures)


def clean_name(name: str) -> str:
    """A file name safe to show and to send on: no path, no control characters."""
    name = name.replace("\\", "/").rpartition("/")[2]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:120] or "file"


@dataclass(frozen=True)
class Upload:
    key: str
    name: str
    mime: str
    size: int

    def attachment(self) -> Attachment:
        kind = "photo" if self.mime in ("image/png", "image/jpeg", "image/webp") else "document"
        return Attachment(kind, self.key, self.name, self.mime, self.size, origin="web")


class FileStore:
    def __init__(self, section: WebSection) -> None:
        self.section = section
        self.directory = Path(section.files_dir)

    def _paths(self, key: str) -> tuple[Path, Path]:
        if not KEY.match(key):
            raise PermanentFailure("not a web chat file")
        return self.directory / key, self.directory / f"{key}.json"

    async def keep(self, chat_id: str, name: str, mime: str, data: bytes) -> Upload:
        section = self.section
        mime = mime.split(";", 1)[0].strip().lower() or "application/octet-stream"
        if len(data) > section.max_file_mb * 2**20:
            raise Refused(413, "file_size", f"files up to {section.max_file_mb:g} MB")
        if not data:
            raise Refused(400, "file_empty", "the file is empty")
        if not section.takes_type(mime):
            raise Refused(415, "file_type", "this kind of file cannot be sent here")
        if not looks_like(mime, data):
            raise Refused(415, "file_type", "the file is not what its type says")
        upload = Upload(secrets.token_urlsafe(24), clean_name(name), mime, len(data))
        body, meta = self._paths(upload.key)
        about = {"chat": chat_id, "name": upload.name, "mime": mime, "size": len(data)}
        await asyncio.to_thread(self._write, body, meta, data, about)
        return upload

    def _write(self, body: Path, meta: Path, data: bytes, about: dict[str, object]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        body.write_bytes(data)
        meta.write_text(json.dumps(about))

    async def upload(self, chat_id: str, key: object) -> Upload:
        """A file the visitor of ``chat_id`` uploaded, by its key (never another's)."""
        if not isinstance(key, str) or not KEY.match(key):
            raise Refused(400, "file", "no such file")
        _, meta = self._paths(key)
        try:
            about = json.loads(await asyncio.to_thread(meta.read_text))
        except (OSError, ValueError):
            raise Refused(400, "file", "no such file") from None
        if about.get("chat") != chat_id:
            raise Refused(400, "file", "no such file")
        return Upload(key, about["name"], about["mime"], int(about["size"]))

    async def sent(self, keys: list[str], message_id: int) -> None:
        """Write down the message that carries these files (before it is
        acknowledged: a file is kept as long as its message carries it)."""
        await asyncio.to_thread(self._mark_sent, keys, message_id)

    def _mark_sent(self, keys: list[str], message_id: int) -> None:
        for key in keys:
            _, meta = self._paths(key)
            about = json.loads(meta.read_text())
            if about.get("message") != message_id:
                meta.write_text(json.dumps({**about, "message": message_id}))

    async def sweep(self, carried: Callable[[list[int]], Awaitable[dict[int, list[str]]]]) -> int:
        """Delete the files no message carries any more (``carried``: the file keys
        each message still has), and those never sent after a day; how many went."""
        kept = await asyncio.to_thread(self._inventory)
        now = time.time()
        doomed = [key for key, (message, at) in kept.items() if message is None
                  and now - at > UNSENT_SECONDS]  # fmt: skip
        sent = [(key, message) for key, (message, _) in kept.items() if message is not None]
        for start in range(0, len(sent), SWEEP_BATCH):
            batch = sent[start : start + SWEEP_BATCH]
            still = await carried(sorted({message for _, message in batch}))
            doomed += [key for key, message in batch if key not in still.get(message, ())]
        await asyncio.to_thread(self._delete, doomed)
        return len(doomed)

    def _inventory(self) -> dict[str, tuple[int | None, float]]:
        """Every kept file: the message that carries it (if sent), when it came."""
        out: dict[str, tuple[int | None, float]] = {}
        if not self.directory.is_dir():
            return out
        for meta in self.directory.glob("*.json"):
            try:
                about = json.loads(meta.read_text())
                out[meta.stem] = (about.get("message"), meta.stat().st_mtime)
            except (OSError, ValueError) as exc:
                log.warning("web: %s cannot be read: %s", meta, exc)
        return out

    def _delete(self, keys: list[str]) -> None:
        for key in keys:
            for path in self._paths(key):
                path.unlink(missing_ok=True)

    async def read(self, attachment: Attachment) -> FileData:
        body, _ = self._paths(attachment.file_ref)
        try:
            data = await asyncio.to_thread(body.read_bytes)
        except OSError:
            raise PermanentFailure("the visitor's file is gone from web.files_dir") from None
        return FileData(
            attachment.name or "file", attachment.mime or "application/octet-stream", data
        )
