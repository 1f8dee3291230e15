"""Operator actions: the registry the handlers plug into.

The core knows actions only by name; ``handlers/`` registers the functions at the
composition root, the way an aiogram router collects its handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.config import Config, OperatorConfig
from gateway.dispatcher import Dispatcher
from gateway.events import ActionResult
from gateway.relay import Relay
from storage import Conversation, Transaction


@dataclass
class ActionContext:
    """What a handler gets: the transaction, the core's tools, who, where, what."""

    tx: Transaction
    config: Config
    dispatcher: Dispatcher
    relay: Relay
    operator: OperatorConfig
    conversation: Conversation | None
    args: str
    channel: str  # the workspace the action came from

    def done(self, message: str) -> ActionResult:
        return ActionResult(True, message, self.conversation.id if self.conversation else None)

    def refuse(self, message: str) -> ActionResult:
        return ActionResult(False, message, self.conversation.id if self.conversation else None)


Handler = Callable[[ActionContext], Awaitable[ActionResult]]


@dataclass(frozen=True)
class Action:
    name: str
    handler: Handler
    needs_conversation: bool
    help: str


class ActionRouter:
    """Collects actions where they are written (``handlers/``), like an aiogram Router."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, Action]] = []

    def action(
        self,
        name: str,
        *,
        needs_conversation: bool = True,
        help: str = "",
        aliases: tuple[str, ...] = (),
    ) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            entry = Action(name, handler, needs_conversation, help)
            self.actions.extend((key, entry) for key in (name, *aliases))
            return handler

        return decorator


class ActionRegistry:
    """The core's table of actions by name, filled at the composition root."""

    def __init__(self) -> None:
        self._actions: dict[str, Action] = {}

    def include(self, router: ActionRouter) -> None:
        for key, action in router.actions:
            if key in self._actions:
                raise ValueError(f"action {key!r} is registered twice")
            self._actions[key] = action

    def get(self, name: str) -> Action | None:
        return self._actions.get(name.lower())

    def names(self) -> list[str]:
        return sorted({a.name for a in self._actions.values()})


def parse_command(text: str) -> tuple[str, str] | None:
    """``/transfer@SupportBot boris`` -> ("transfer", "boris"); None if not a command."""
    stripped = text.strip()
    if not stripped.startswith("/") or len(stripped) < 2:
        return None
    head, _, args = stripped[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    if not name.replace("_", "").isalnum():
        return None
    return name, args.strip()
