"""Finding the channel plugins, and loading a config with their sections.

Kept apart from the composition root (``gateway.app``) so that a command which only
reads the config (check-config, status, report, faq) imports neither the HTTP
server, the scheduler nor any platform SDK: each plugin's module holds its section's
model and names its adapter class, imported only when the gateway starts it.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from pydantic import BaseModel

import adapters as adapters_package
from gateway.adapter import ChannelPlugin
from gateway.config import Config, load_config


def discover_plugins() -> dict[str, ChannelPlugin]:
    """Every ``PLUGIN`` exposed by a module or package in ``adapters/``, by name."""
    plugins: dict[str, ChannelPlugin] = {}
    for module_info in pkgutil.iter_modules(adapters_package.__path__):
        module = importlib.import_module(f"adapters.{module_info.name}")
        plugin = getattr(module, "PLUGIN", None)
        if isinstance(plugin, ChannelPlugin):
            plugins[plugin.name] = plugin
    return plugins


def channel_models(
    plugins: dict[str, ChannelPlugin] | None = None,
) -> dict[str, type[BaseModel]]:
    """Section name -> its config model, for ``load_config`` and ``parse_config``."""
    plugins = discover_plugins() if plugins is None else plugins
    return {name: plugin.config_model for name, plugin in plugins.items()}


def load(
    path: str | Path, plugins: dict[str, ChannelPlugin] | None = None, *, channels: bool = True
) -> Config:
    """The config at ``path``, its channel sections validated by their plugins'
    models (``channels=False``: skipped, for commands that talk to no platform)."""
    return load_config(path, channel_models(plugins), channels=channels)
