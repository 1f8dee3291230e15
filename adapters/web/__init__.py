"""Web chat: a widget a site embeds with one script tag; WebSocket or long-poll to
the gateway's own HTTP server."""

from adapters.web.config import WebSection
from gateway.adapter import ChannelPlugin

PLUGIN = ChannelPlugin(
    name="web",
    config_model=WebSection,
    adapter="adapters.web.adapter:WebAdapter",
)

__all__ = ["PLUGIN", "WebSection"]
