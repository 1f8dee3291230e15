"""Telegram: customers in private chats, operators in a forum supergroup (aiogram 3)."""

from adapters.telegram.config import TelegramSection
from gateway.adapter import ChannelPlugin

PLUGIN = ChannelPlugin(
    name="telegram",
    config_model=TelegramSection,
    adapter="adapters.telegram.adapter:TelegramAdapter",
)

__all__ = ["PLUGIN", "TelegramSection"]
