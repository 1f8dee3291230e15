"""The container and service files README's Production section uses, checked where
no container runtime is: the Dockerfile by hadolint and by replaying its install in
a fresh environment, compose.yaml, the Caddyfile and the systemd unit against each
other and against the production config they are meant to run."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import load_config
from gateway.plugins import channel_models
from tests.support import ROOT

DEPLOY = ROOT / "deploy"


def instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile's (INSTRUCTION, arguments), continuation lines joined."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def environment_example() -> dict[str, str]:
    """deploy/env.example's values, as compose hands them to the gateway, plus the
    DATABASE_URL compose.yaml builds from them."""
    values = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    url = compose["services"]["gateway-1"]["environment"]["DATABASE_URL"]
    values["DATABASE_URL"] = re.sub(r"\$\{(\w+)(:\?[^}]*)?\}", lambda m: values[m.group(1)], url)
    return values


def production_config() -> Any:
    return load_config(DEPLOY / "config.toml", channel_models(), environ=environment_example())


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    linted = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_image_installs_the_locked_versions_and_every_package_as_a_non_root_user() -> None:
    steps = instructions(ROOT / "Dockerfile")
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert "--require-hashes -r requirements.lock" in runs
    copied = {args.split()[0] for word, args in steps if word == "COPY"}
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    assert packages <= copied, packages - copied
    user = [args for word, args in steps if word == "USER"][-1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    health = next(args for word, args in steps if word == "HEALTHCHECK")
    env = " ".join(args for word, args in steps if word == "ENV")
    assert "GATEWAY_HEALTH_URL" in health and "/healthz" in env
    assert [args for word, args in steps if word == "STOPSIGNAL"] == ["SIGTERM"]
    entry = [args for word, args in steps if word in ("ENTRYPOINT", "CMD")]
    assert entry == ['["gateway"]', '["run", "--config", "/etc/gateway/config.toml"]']


@pytest.mark.long
def test_the_images_install_steps_work_in_a_fresh_environment(tmp_path: Path) -> None:
    """The Dockerfile's COPY and RUN steps replayed in a new virtual environment:
    the files it copies are all the install needs, and the gateway it installs
    reads the production config."""
    steps = instructions(ROOT / "Dockerfile")
    context = tmp_path / "image"
    context.mkdir()
    for word, args in steps:
        if word != "COPY":
            continue
        *sources, _target = args.split()
        for source in sources:
            origin = ROOT / source
            if origin.is_dir():
                shutil.copytree(
                    origin, context / source, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copy(origin, context / source)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    for command in (
        [*pip, "--require-hashes", "-r", "requirements.lock"],
        [*pip, "--no-deps", "."],
    ):
        done = subprocess.run(command, cwd=context, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
    checked = subprocess.run(
        [str(venv / "bin" / "gateway"), "check-config", str(DEPLOY / "config.toml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, **environment_example()},
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "valid" in checked.stdout


def test_compose_migrates_once_then_runs_two_gateways_behind_the_proxy() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    migrate = services["migrate"]
    assert migrate["command"][0] == "migrate" and migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    gateways = [name for name in services if name.startswith("gateway-")]
    assert len(gateways) >= 2
    for name in gateways:
        service = services[name]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "./config.toml:/etc/gateway/config.toml:ro" in service["volumes"]
        assert "@postgres:5432/" in service["environment"]["DATABASE_URL"]
        assert service["build"] == "." and service["restart"] == "unless-stopped"
        # longer than the config lets in-flight deliveries take after SIGTERM
        grace = int(service["stop_grace_period"].rstrip("s"))
        assert grace > production_config().gateway.shutdown_timeout_seconds
    proxy = services["proxy"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert set(gateways) <= set(proxy["depends_on"])


def test_the_proxy_sends_the_platforms_paths_to_every_gateway_and_nothing_else() -> None:
    config = production_config()
    caddy = (DEPLOY / "Caddyfile").read_text()
    public = set(re.search(r"@platforms path (.+)", caddy).group(1).split())  # type: ignore[union-attr]
    assert public == {
        config.channels["telegram"].served_path,
        config.channels["slack"].events_path,
    }
    upstreams = re.search(r"reverse_proxy (.+) \{", caddy).group(1).split()  # type: ignore[union-attr]
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    gateways = sorted(name for name in compose["services"] if name.startswith("gateway-"))
    assert upstreams == [f"{name}:{config.gateway.http_port}" for name in gateways]
    assert "health_uri /readyz" in caddy
    # and the web chat's script, calls and socket, to the same processes
    assert "@webchat path /widget.js /web/*" in caddy
    assert caddy.count(f"reverse_proxy {' '.join(upstreams)} {{") == 2
    assert config.gateway.http_host == "0.0.0.0"  # reachable from the proxy


def test_the_systemd_unit_migrates_runs_and_leaves_time_to_stop() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "gateway.service")
    service = unit["Service"]
    assert service["ExecStartPre"].split()[1:3] == ["migrate", "--config"]
    assert service["ExecStart"].split()[1:3] == ["run", "--config"]
    assert service["User"] != "root" and service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > production_config().gateway.shutdown_timeout_seconds
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_image_builds_where_a_container_runtime_is(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode:
        pytest.skip("no container runtime here: the files are checked by the tests above")
    built = subprocess.run(
        [docker, "build", "-q", "-t", "support-gateway:test", str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-3000:]
