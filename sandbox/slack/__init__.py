"""A Slack emulator (Web API, Events API, Socket Mode): see ``server.SlackSandbox``."""

from sandbox.slack.server import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, SlackSandbox, sign
from sandbox.slack.world import ApiError, Limits, World

__all__ = [
    "APP_TOKEN",
    "BOT_TOKEN",
    "SIGNING_SECRET",
    "ApiError",
    "Limits",
    "SlackSandbox",
    "World",
    "sign",
]
