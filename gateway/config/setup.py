"""Checks across sections: setups in which every key is valid but the desk cannot work.

A channel section says where its operators' workspace is configured and how an
operator is named on its platform, with two class attributes (``workspace_key``,
``operator_key``; ``None`` for a channel that hosts no workspace, like email). The
core knows no platform: it asks the sections.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import BaseModel

from gateway.config.models import CoreConfig


def _workspace_key(model: type[BaseModel]) -> str | None:
    return getattr(model, "workspace_key", None)


def _operator_key(model: type[BaseModel]) -> str | None:
    return getattr(model, "operator_key", None)


def _operator_id(model: type[BaseModel]) -> tuple[str, str] | None:
    """(pattern, example) of an operator's id on the channel, where it says."""
    return getattr(model, "operator_id", None)


def setup_problems(
    core: CoreConfig,
    channels: Mapping[str, BaseModel],
    models: Mapping[str, type[BaseModel]],
) -> list[tuple[str, str]]:
    """(key path, reason) for each way the configured desk cannot work: nobody to
    answer, customers written to where no operator sees them, an operator who can act
    in none of the workspaces. ``models``: every channel the gateway knows, to say
    which key would configure a workspace."""
    problems: list[tuple[str, str]] = []
    if not core.operators:
        problems.append(
            (
                "operators",
                "no operator is configured: nobody could answer a customer "
                "(add an [[operators]] table with id, name and their workspace ids)",
            )
        )
    workspaces = {
        name: section
        for name, section in channels.items()
        if (key := _workspace_key(type(section))) and getattr(section, key) is not None
    }
    if channels and not workspaces:
        keys = [f"{name}.{key}" for name, model in models.items() if (key := _workspace_key(model))]
        first = next(iter(channels))
        where = next((k for k in keys if k.startswith(f"{first}.")), first)
        problems.append(
            (
                where,
                "no operators' workspace is configured: customers could write in, but no "
                f"operator would see them (set {' or '.join(keys) or 'a workspace'})",
            )
        )
    for index, operator in enumerate(core.operators):
        for channel, value in operator.ids.items():
            if models and channel not in models:
                problems.append(
                    (
                        f"operators[{index}].ids.{channel}",
                        f"no channel is called {channel!r} (known: {', '.join(sorted(models))})",
                    )
                )
                continue
            form = _operator_id(models[channel]) if channel in models else None
            if form is not None and not re.match(form[0], value):
                problems.append(
                    (
                        f"operators[{index}].{operator.written_id(channel)[0]}",
                        f"{value!r} is not a {channel} id (one looks like {form[1]})",
                    )
                )
        reachable = any(operator.identity(name) is not None for name in workspaces)
        if workspaces and not reachable:
            needs = " or ".join(
                f"{_operator_key(type(section))} ({name} workspace)"
                for name, section in workspaces.items()
            )
            problems.append(
                (
                    f"operators[{index}]",
                    f"{operator.id} can act in none of the configured workspaces: "
                    f"give them {needs}",
                )
            )
    return problems
