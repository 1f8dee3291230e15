"""A Telegram Bot API emulator: see ``server.TelegramSandbox``."""

from sandbox.common import Fault
from sandbox.telegram.server import DEFAULT_TOKEN, TelegramSandbox
from sandbox.telegram.world import ApiError, Limits, World

__all__ = ["DEFAULT_TOKEN", "ApiError", "Fault", "Limits", "TelegramSandbox", "World"]
