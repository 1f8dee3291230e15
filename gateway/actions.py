"""Operator actions: the registry the handlers plug into.

The core knows actions only by name; ``handlers/`` registers the functions at the
composition root, the way an aiogram router collects its handlers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.config import Config, OperatorConfig
from gateway.dispatcher import Dispatcher
from gateway.events import ActionResult
from gateway.operator_side import OperatorSide
from gateway.relay import Relay
from storage import Conversation, Transaction


@dataclass(frozen=True)
class ActionContext:
    """What a handler gets: the transaction, the core's tools, who, where, what.

    ``conversation`` is the one whose topic or thread the command was given in, if
    any; a handler registered with ``ActionRouter.action`` gets ``InConversation``,
    where it is always there."""

    tx: Transaction
    config: Config
    dispatcher: Dispatcher
    relay: Relay
    #: how an operator's message reaches the customer (a saved reply is one)
    answering: OperatorSide
    operator: OperatorConfig
    conversation: Conversation | None
    args: str
    channel: str  # the workspace the action came from

    def done(self, message: str) -> ActionResult:
        return ActionResult.done(message, self.conversation.id if self.conversation else None)

    def lookup(
        self, message: str, choices: tuple[tuple[str, str], ...] = (), *, ok: bool = True
    ) -> ActionResult:
        """An answer that is what was asked for (a list), or, not ``ok``, a list
        offered instead of what was asked (an unknown name)."""
        return ActionResult(
            ok, message, self.conversation.id if self.conversation else None, choices, lookup=True
        )

    def refuse(self, message: str) -> ActionResult:
        return ActionResult.refused(message, self.conversation.id if self.conversation else None)


@dataclass(frozen=True)
class InConversation(ActionContext):
    """The context of an action given inside a conversation's topic or thread."""

    conversation: Conversation


TeamHandler = Callable[[ActionContext], Awaitable[ActionResult]]
ConversationHandler = Callable[[InConversation], Awaitable[ActionResult]]


@dataclass(frozen=True)
class Action:
    """An action that works anywhere in the workspace (``/status``, ``/online``)."""

    name: str
    help: str
    handler: TeamHandler

    @property
    def needs_conversation(self) -> bool:
        return False

    async def run(self, context: ActionContext) -> ActionResult:
        return await self.handler(context)


@dataclass(frozen=True)
class ConversationAction:
    """An action on the conversation whose topic or thread it is given in; refused
    anywhere else, so its handler never meets a missing conversation."""

    name: str
    help: str
    handler: ConversationHandler

    @property
    def needs_conversation(self) -> bool:
        return True

    async def run(self, context: ActionContext) -> ActionResult:
        conversation = context.conversation
        if conversation is None:
            return context.refuse(f"/{self.name} works inside a conversation's topic or thread.")
        fields = {f.name: getattr(context, f.name) for f in dataclasses.fields(context)}
        fields["conversation"] = conversation
        return await self.handler(InConversation(**fields))


AnyAction = Action | ConversationAction


class ActionRouter:
    """Collects actions where they are written (``handlers/``), like an aiogram Router:
    ``action`` for those on a conversation, ``team_action`` for those that are not."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, AnyAction]] = []

    def action(
        self, name: str, *, help: str = "", aliases: tuple[str, ...] = ()
    ) -> Callable[[ConversationHandler], ConversationHandler]:
        def decorator(handler: ConversationHandler) -> ConversationHandler:
            self._add(ConversationAction(name, help, handler), aliases)
            return handler

        return decorator

    def team_action(
        self, name: str, *, help: str = "", aliases: tuple[str, ...] = ()
    ) -> Callable[[TeamHandler], TeamHandler]:
        def decorator(handler: TeamHandler) -> TeamHandler:
            self._add(Action(name, help, handler), aliases)
            return handler

        return decorator

    def _add(self, entry: AnyAction, aliases: tuple[str, ...]) -> None:
        self.actions.extend((key, entry) for key in (entry.name, *aliases))


class ActionRegistry:
    """The core's table of actions by name, filled at the composition root."""

    def __init__(self) -> None:
        self._actions: dict[str, AnyAction] = {}

    def include(self, router: ActionRouter) -> None:
        for key, action in router.actions:
            if key in self._actions:
                raise ValueError(f"action {key!r} is registered twice")
            self._actions[key] = action

    def get(self, name: str) -> AnyAction | None:
        return self._actions.get(name.lower())

    def names(self) -> list[str]:
        return sorted({a.name for a in self._actions.values()})

    def menu(self) -> list[tuple[str, str]]:
        """Each action once, by its name, with its help: a platform's command menu
        (not those without help: the ones buttons give)."""
        seen: dict[str, str] = {}
        for action in self._actions.values():
            if action.help:
                seen.setdefault(action.name, action.help)
        return sorted(seen.items())


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
