"""Telegram: customers in private chats, operators in a forum supergroup (aiogram 3)."""

from adapters.telegram.adapter import TelegramAdapter
from adapters.telegram.config import TelegramSection
from gateway.adapter import ChannelPlugin

PLUGIN = ChannelPlugin(
    name="telegram",
    config_model=TelegramSection,
    create=lambda section, config: TelegramAdapter(section, config),  # type: ignore[arg-type]
)

__all__ = ["PLUGIN", "TelegramAdapter", "TelegramSection"]
