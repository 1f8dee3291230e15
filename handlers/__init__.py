"""What people do: operator actions, platform-neutral. Registered by gateway.app."""

from gateway.actions import ActionRegistry
from handlers import tagging
from handlers.operator_actions import router


def register(registry: ActionRegistry) -> None:
    registry.include(router)
    registry.include(tagging.router)


__all__ = ["register", "router"]
