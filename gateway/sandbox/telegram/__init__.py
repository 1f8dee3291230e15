"""A Telegram Bot API emulator: see ``server.TelegramSandbox``."""

from gateway.sandbox.common import Fault
from gateway.sandbox.telegram.server import DEFAULT_TOKEN, TelegramSandbox
from gateway.sandbox.telegram.world import ApiError, Limits, World

__all__ = ["DEFAULT_TOKEN", "ApiError", "Fault", "Limits", "TelegramSandbox", "World"]
