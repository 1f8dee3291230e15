"""What people do: operator actions, platform-neutral. Registered by gateway.app."""

from gateway.actions import ActionRegistry
from handlers import collisions, history, saved_replies, tagging
from handlers.operator_actions import router


def register(registry: ActionRegistry) -> None:
    registry.include(router)
    registry.include(tagging.router)
    registry.include(saved_replies.router)
    registry.include(history.router)
    registry.include(collisions.router)


__all__ = ["register", "router"]
