"""Channel adapters: one module (or package) per platform.

Each translates between its platform and the core's events, and exposes
``PLUGIN = ChannelPlugin(...)`` so the composition root finds it. An adapter imports
the core (``gateway``) and its platform's SDK, never another adapter.
"""
