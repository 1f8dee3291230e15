"""Reading config.toml: TOML, ``${ENV}`` secrets, validation, errors an admin can act on.

Every problem becomes one line naming the key path (``operators[1].max_chats``), the
bad value (masked when it is a secret), the reason, and the line in the file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy.engine import make_url

from gateway.config.models import CoreConfig, Problems
from gateway.config.setup import setup_problems
from gateway.errors import ConfigError

ENV_RE = re.compile(r"\$(\$)?\{([^}]*)\}")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_KEY_RE = re.compile(r"(token|secret|password|passwd|api_key|private)", re.I)


class LiveConfig:
    """The config in force, whatever reloads happened since: what adapters hold.

    Attribute access goes to the current ``Config``, so an adapter that checks
    ``self.config.operators`` sees an operator added by a reload.
    """

    def __init__(self, current: Callable[[], Config]) -> None:
        self._current = current

    def __getattr__(self, name: str) -> Any:
        return getattr(self._current(), name)


@dataclass(frozen=True)
class Config:
    """The whole validated configuration: the core's sections and each channel's."""

    core: CoreConfig
    channels: dict[str, BaseModel] = field(default_factory=dict)
    path: Path | None = None
    #: every secret value found, so that logs can be scrubbed of them
    secrets: frozenset[str] = frozenset()
    #: what works but should be done otherwise (a secret written in the file), each a
    #: line like a problem's: shown by check-config, logged at start
    warnings: tuple[str, ...] = ()

    @property
    def gateway(self):
        return self.core.gateway

    @property
    def routing(self):
        return self.core.routing

    @property
    def operators(self):
        return self.core.operators

    @property
    def texts(self):
        return self.core.texts

    @property
    def outbox(self):
        return self.core.outbox

    def operator(self, operator_id: str | None):
        return next((op for op in self.core.operators if op.id == operator_id), None)


def load_config(
    path: str | os.PathLike[str],
    channel_models: Mapping[str, type[BaseModel]] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    channels: bool = True,
) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot be read ({exc})"]) from None
    return parse_config(
        text, channel_models, environ=environ, path=path, channels=channels, check_setup=channels
    )


def parse_config(
    text: str,
    channel_models: Mapping[str, type[BaseModel]] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
    channels: bool = True,
    check_setup: bool = False,
) -> Config:
    """``channels=False``: for commands that only read the database (status, report,
    migrate, faq): the channel sections, and the secrets in them, are skipped, so an
    admin needs no platform token in the environment to run them.
    ``check_setup``: the text is a whole config to run, so the desk it describes must
    be able to work (``setup_problems``): what ``load_config`` asks for an admin's
    file, and not for the fragments that tests and the demo put together."""
    channel_models = dict(channel_models or {})
    known_models = dict(channel_models)
    environ = os.environ if environ is None else environ
    where = f"{path}: " if path else ""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{where}TOML syntax error: {exc}"]) from None
    if not channels:
        raw = {k: v for k, v in raw.items() if k not in channel_models}
        channel_models = {}

    lines = KeyLines(text)
    env = _Environment(environ, lines)
    data = env.substitute(raw)
    problems = env.problems

    core_keys = set(CoreConfig.model_fields)
    unknown = [k for k in data if k not in core_keys and k not in channel_models]
    for key in unknown:
        known = sorted(core_keys | set(channel_models))
        problems.append(
            _line(
                key,
                f"unknown section: nothing in this gateway reads it (known: {', '.join(known)})",
                lines,
            )
        )

    core: CoreConfig | None = None
    try:
        core = CoreConfig.model_validate({k: v for k, v in data.items() if k in core_keys})
    except ValidationError as exc:
        problems.extend(_explain(exc, "", env.unset, env.secret_paths, lines))

    sections: dict[str, BaseModel] = {}
    for name, model in channel_models.items():
        if name not in data:
            continue
        try:
            sections[name] = model.model_validate(data[name])
        except ValidationError as exc:
            problems.extend(_explain(exc, name, env.unset, env.secret_paths, lines))
    secrets = set(env.secrets)
    literal = set(env.literal_secrets)
    for name, section in sections.items():
        for key_path, value in _secret_fields(section, name):
            secrets.add(value)
            if key_path not in env.from_environment:
                literal.add(key_path)
    if core is not None:
        if _has_password(core.gateway.database_url) and (
            "gateway.database_url" not in env.from_environment
        ):
            literal.add("gateway.database_url")
        if not problems and check_setup:
            problems.extend(
                _line(key_path, reason, lines)
                for key_path, reason in setup_problems(core, sections, known_models)
            )

    if problems:
        raise ConfigError([where + p for p in problems])
    assert core is not None
    warnings = tuple(
        where
        + _line(
            key_path,
            "a secret written in the file: write ${NAME} and set NAME in the environment, "
            "so the file can be shared and kept in version control",
            lines,
        )
        for key_path in sorted(literal)
    )
    return Config(
        core=core, channels=sections, path=path, secrets=frozenset(secrets), warnings=warnings
    )


class _Environment:
    """Replaces ``${NAME}`` with the environment's value (``$${`` keeps a literal ``${``),
    and remembers which keys held secrets and which named a variable that is unset."""

    def __init__(self, environ: Mapping[str, str], lines: KeyLines) -> None:
        self.environ = environ
        self.lines = lines
        self.problems: list[str] = []
        self.secrets: set[str] = set()
        self.secret_paths: set[str] = set()
        #: keys whose value came (at least in part) from the environment
        self.from_environment: set[str] = set()
        #: keys named like a secret whose value is written in the file itself
        self.literal_secrets: set[str] = set()
        self.unset: set[str] = set()

    def substitute(self, value: Any, key_path: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self.substitute(v, _join(key_path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v, f"{key_path}[{i}]") for i, v in enumerate(value)]
        if not isinstance(value, str):
            return value
        if "${" not in value:
            if SECRET_KEY_RE.search(key_path.rsplit(".", 1)[-1]):
                self.secret_paths.add(key_path)
                if value:
                    self.secrets.add(value)
                    self.literal_secrets.add(key_path)
            return value
        return ENV_RE.sub(lambda match: self._replace(match, key_path), value)

    def _replace(self, match: re.Match[str], key_path: str) -> str:
        escaped, name = match.group(1), match.group(2)
        if escaped:
            return "${" + name + "}"
        self.secret_paths.add(key_path)
        self.from_environment.add(key_path)
        if not ENV_NAME_RE.match(name):
            reason = f"${{{name}}} is not a valid variable name"
        elif name not in self.environ:
            reason = f"environment variable {name} is not set"
        else:
            if self.environ[name]:
                self.secrets.add(self.environ[name])
            return self.environ[name]
        self.unset.add(key_path)
        self.problems.append(_line(key_path, reason, self.lines))
        return ""


def _secret_fields(model: BaseModel, prefix: str) -> Iterator[tuple[str, str]]:
    """(key path, value) of every secret set in a section."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        key_path = _join(prefix, name)
        items = enumerate(value) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            item_path = key_path if index is None else _join(key_path, index)
            if isinstance(item, SecretStr) and item.get_secret_value():
                yield item_path, item.get_secret_value()
            elif isinstance(item, BaseModel):
                yield from _secret_fields(item, item_path)


def _has_password(database_url: str) -> bool:
    return make_url(database_url).password is not None


def _join(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def _explain(
    exc: ValidationError,
    prefix: str,
    unset: set[str],
    secret_paths: set[str],
    lines: KeyLines,
) -> list[str]:
    out: list[str] = []
    for error in exc.errors():
        loc_path = prefix
        for part in error["loc"]:
            loc_path = _join(loc_path, part)
        if loc_path in unset:
            continue
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, Problems):
            for sub_path, reason in cause.items:
                full = sub_path if not loc_path else f"{loc_path}.{sub_path}"
                out.append(_line(full, reason, lines))
            continue
        reason = _reason(error)
        if error["type"] == "missing":
            out.append(_line(loc_path, "required key is missing", lines))
            continue
        if error["type"] == "extra_forbidden":
            out.append(_line(loc_path, "unknown key (a typo?)", lines))
            continue
        value = error.get("input")
        if isinstance(value, dict | list):
            # a check across a table's keys: the keys are the table's, and some of
            # them may be secrets
            out.append(_line(loc_path, reason, lines))
            continue
        shown = _show(loc_path, value, secret_paths)
        out.append(_line(loc_path, f"{reason} (got {shown})", lines))
    return out


def _reason(error: Mapping[str, Any]) -> str:
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _show(key_path: str, value: Any, secret_paths: set[str]) -> str:
    if key_path in secret_paths or SECRET_KEY_RE.search(key_path.rsplit(".", 1)[-1]):
        return "a secret value, not shown"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _line(key_path: str, reason: str, lines: KeyLines) -> str:
    number = lines.find(key_path)
    suffix = f" (line {number})" if number else ""
    return f"{key_path or '(top level)'}: {reason}{suffix}"


class KeyLines:
    """Where each key path is written in the TOML text, for error messages.

    tomllib keeps no positions, so this is a small scanner of the two forms admins
    write: table headers (``[a.b]``, ``[[a]]``) and ``key = value`` lines. Inline
    tables and multi-line values are attributed to the key that opens them.
    """

    HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    KEY_RE = re.compile(
        r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
    )

    def __init__(self, text: str) -> None:
        self.paths: dict[str, int] = {}
        counts: dict[str, int] = {}
        table = ""
        in_multiline: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if in_multiline:
                if in_multiline in line:
                    in_multiline = None
                continue
            header = self.HEADER_RE.match(line)
            if header:
                name = ".".join(self._parts(header.group(2)))
                if header.group(1) == "[[":
                    # an array of tables: [[operators]] -> operators[0], operators[1], ...
                    parent, _, last = name.rpartition(".")
                    base = _join(self._resolve(parent, counts), last) if parent else last
                    index = counts.get(base, -1) + 1
                    counts[base] = index
                    table = f"{base}[{index}]"
                else:
                    table = self._resolve(name, counts)
                self.paths.setdefault(table, number)
                continue
            key = self.KEY_RE.match(line)
            if key:
                path = table
                for part in self._parts(key.group(1)):
                    path = _join(path, part)
                self.paths.setdefault(path, number)
                for quote in ('"""', "'''"):
                    if line.count(quote) == 1:
                        in_multiline = quote

    @staticmethod
    def _parts(dotted: str) -> list[str]:
        return [
            p.strip().strip("\"'") for p in re.findall(r"""(?:"[^"]*"|'[^']*'|[^.]+)""", dotted)
        ]

    @staticmethod
    def _resolve(name: str, counts: dict[str, int]) -> str:
        """Turn ``faq.entries`` into ``faq.entries`` but ``operators.x`` into
        ``operators[2].x`` when ``operators`` is an array of tables."""
        parts = name.split(".") if name else []
        path = ""
        for part in parts:
            path = _join(path, part)
            if path in counts:
                path = f"{path}[{counts[path]}]"
        return path

    def find(self, key_path: str) -> int | None:
        path = key_path
        while path:
            if path in self.paths:
                return self.paths[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return None
