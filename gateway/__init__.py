"""The support gateway's core: conversation model, dispatcher, routing, config, CLI.

The core imports no platform SDK; adapters plug in through ``gateway.adapter``.
"""

__version__ = "0.1.0"
