"""Slack: operators in a channel (a thread per conversation), customers in DMs (slack-bolt)."""

from adapters.slack.adapter import SlackAdapter
from adapters.slack.config import SlackSection
from gateway.adapter import ChannelPlugin

PLUGIN = ChannelPlugin(
    name="slack",
    config_model=SlackSection,
    create=lambda section, config: SlackAdapter(section, config),  # type: ignore[arg-type]
)

__all__ = ["PLUGIN", "SlackAdapter", "SlackSection"]
