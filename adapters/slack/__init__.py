"""Slack: operators in a channel (a thread per conversation), customers in DMs (slack-bolt)."""

from adapters.slack.config import SlackSection
from gateway.adapter import ChannelPlugin

PLUGIN = ChannelPlugin(
    name="slack",
    config_model=SlackSection,
    adapter="adapters.slack.adapter:SlackAdapter",
)

__all__ = ["PLUGIN", "SlackSection"]
