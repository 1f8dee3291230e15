"""Emulators of the platforms, speaking their real wire protocols on loopback.

Used by the tests, the benchmarks, `gateway demo` and users trying a config before
they have real tokens. The sandbox imports neither the core nor the adapters: it is
an independent stand-in for the platforms, so the real SDKs run against it.
"""
