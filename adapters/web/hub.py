"""The visitors connected to this process, and what reaches them live.

What is pushed here is a courtesy: the transcript in the database is what a
visitor's widget reads when it (re)connects, from the last message it has, so a
frame that found nobody (a visitor between two long polls, a socket that dropped)
is read from there. An idle connection holds a ``Listener`` and nothing else; a
task runs only while frames are waiting to be written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

#: frames waiting for one listener beyond this mean it stopped reading: it is cut off
MAX_WAITING = 500


class Listener:
    """One connection's way in: a socket (``write``) or a long poll (``wait``)."""

    __slots__ = ("_drain", "_hang_up", "_write", "chat_id", "closed", "ready", "waiting")

    def __init__(
        self,
        chat_id: str,
        write: Callable[[str], Awaitable[None]] | None = None,
        hang_up: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.chat_id = chat_id
        self.waiting: list[str] = []
        self._write = write
        #: ends a socket's connection (the gateway stopping): the widget reconnects
        self._hang_up = hang_up
        self._drain: asyncio.Task[None] | None = None
        self.ready: asyncio.Event | None = None if write else asyncio.Event()
        self.closed = False

    def push(self, frame: str) -> None:
        if self.closed:
            return
        if len(self.waiting) >= MAX_WAITING:
            log.warning("web: a connection of %s stopped reading; cut off", self.chat_id)
            self.closed = True
            if self.ready is not None:
                self.ready.set()
            return
        self.waiting.append(frame)
        if self.ready is not None:
            self.ready.set()
        elif self._drain is None:
            self._drain = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        assert self._write is not None
        try:
            while self.waiting and not self.closed:
                frame = self.waiting.pop(0)
                await self._write(frame)
        except (ConnectionError, RuntimeError) as exc:
            log.debug("web: a connection of %s closed while written to: %s", self.chat_id, exc)
            self.closed = True
        finally:
            self._drain = None

    async def wait(self, seconds: float) -> list[str]:
        """A long poll: the frames pushed so far, or the first ones to come."""
        assert self.ready is not None
        if not self.waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ready.wait(), seconds)
        taken, self.waiting = self.waiting, []
        self.ready.clear()
        return taken

    async def close(self, *, hang_up: bool = False) -> None:
        """Stop writing; ``hang_up``: end the connection too (a long poll answers
        at once, a socket is closed as "going away")."""
        self.closed = True
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain
        if hang_up:
            if self.ready is not None:
                self.ready.set()
            if self._hang_up is not None:
                with contextlib.suppress(Exception):
                    await self._hang_up()


#: messages a chat's pushes are remembered for (``Hub.pushed``), the latest
PUSHED_KEPT = 100


class Hub:
    def __init__(self) -> None:
        self._chats: dict[str, set[Listener]] = {}
        #: the ids of the messages pushed to each connected chat, the latest few
        self._pushed: dict[str, list[int]] = {}

    def join(self, listener: Listener) -> None:
        self._chats.setdefault(listener.chat_id, set()).add(listener)

    def leave(self, listener: Listener) -> None:
        listeners = self._chats.get(listener.chat_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._chats[listener.chat_id]
                self._pushed.pop(listener.chat_id, None)

    def present(self, chat_id: str) -> bool:
        return chat_id in self._chats

    def push(self, chat_id: str, frame: dict[str, Any]) -> int:
        """Send ``frame`` to every connection of the chat; how many there were."""
        listeners = self._chats.get(chat_id)
        if not listeners:
            return 0
        if isinstance(frame.get("id"), int) and not (frame.get("edited") or frame.get("deleted")):
            ids = self._pushed.setdefault(chat_id, [])
            ids.append(frame["id"])
            del ids[:-PUSHED_KEPT]
        text = json.dumps(frame, ensure_ascii=False)
        for listener in list(listeners):
            listener.push(text)
        return len(listeners)

    def push_new(self, chat_id: str, frame: dict[str, Any]) -> None:
        """Push a message's frame unless that message was pushed here already (read
        as another process's delivery and delivered here too, a delivery retried)."""
        if frame.get("id") not in self._pushed.get(chat_id, ()):
            self.push(chat_id, frame)

    def connections(self) -> int:
        return sum(len(listeners) for listeners in self._chats.values())

    async def close(self) -> None:
        """Every connection ended (the gateway stopping): widgets reconnect, to this
        process once it is back or to another one."""
        listeners = [one for chat in self._chats.values() for one in chat]
        self._chats.clear()
        self._pushed.clear()
        await asyncio.gather(*(listener.close(hang_up=True) for listener in listeners))
