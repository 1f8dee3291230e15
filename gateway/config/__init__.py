"""The gateway's configuration: one TOML file, validated at start and on reload."""

from gateway.config.loader import Config, KeyLines, LiveConfig, load_config, parse_config
from gateway.config.models import (
    CoreConfig,
    GatewaySection,
    OperatorConfig,
    OutboxSection,
    RoutingSection,
    TextsSection,
)

__all__ = [
    "Config",
    "CoreConfig",
    "GatewaySection",
    "KeyLines",
    "LiveConfig",
    "OperatorConfig",
    "OutboxSection",
    "RoutingSection",
    "TextsSection",
    "load_config",
    "parse_config",
]
