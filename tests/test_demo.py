"""A new user's first command: README's install + `gateway demo`, run as they would."""

from __future__ import annotations

import asyncio
import io
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import aiohttp
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from gateway import demo as demo_module
from tests.slack_support import free_port
from tests.support import SAFETY_SECONDS
from tests.web_support import Browser

ROOT = Path(__file__).resolve().parents[1]

STEPS = (
    "▶ 1. Boris is busy",
    "▶ 2. Olga writes to the support bot on Telegram",
    "▶ 3. Carol writes to the app in Slack",
    "▶ 4. Pat emails support",
    "▶ 5. Boris is back",
    "▶ 6. Anna answers Olga from her Telegram topic",
    "▶ 7. Boris answers Carol from her Slack thread",
    "▶ 8. Anna closes Olga's conversation",
    "▶ 9. Olga rates it 5",
    "▶ 10. Anna's slot is free again",
)


def check_transcript(text: str) -> None:
    for step in STEPS:
        assert step in text, f"missing: {step}\n{text}"
    lines = text.splitlines()

    def seen(place: str, words: str) -> bool:
        return any(line.strip().startswith(place) and words in line for line in lines)

    # each side sees its part: customers their answers, operators the conversation
    assert seen("Telegram · Olga's chat", "TR-5521")  # Anna's reply reached Olga
    assert seen("Slack · DM with Carol", "2-4 working days")  # the FAQ answered Carol
    assert seen("Slack · DM with Carol", "number 1 in line")
    assert seen("Slack · DM with Carol", "Thursday")  # Boris's reply reached Carol
    assert seen("Email · pat@example.org", "number 2 in line")
    assert seen("Email · pat@example.org", "Anna will help you")
    assert seen("Telegram · topic", "Olga")  # the operators' topic
    assert seen("Slack · thread of Carol", "Thursday")  # the operators' thread
    assert seen("Telegram · topic", "rated this conversation 5/5")
    assert "`gateway status` now:" in text and "(everything delivered)" in text
    assert "Next: connect your own platforms" in text


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_readme_commands_install_from_the_lock_files_and_ci_runs_the_second() -> None:
    first, second = readme_commands()[:2]
    assert "pip install -q -r requirements.lock " in first
    assert "pip install -q -r requirements-test.lock " in second
    assert second.endswith("&& pytest")
    assert f"\n{second}\n" in (ROOT / ".ci" / "run").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {
        "requirements.lock": project["dependencies"],
        "requirements-test.lock": project["dependencies"]
        + project["optional-dependencies"]["test"],
    }
    for lock, requirements in wanted.items():
        text = (ROOT / lock).read_text()
        # every package is pinned to one version, with the hashes of its files
        entries = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text)[1:]
        assert entries and all("--hash=sha256:" in entry for entry in entries), lock
        pins = {
            canonicalize_name(name): version
            for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==([^ ;]+)", text, re.M)
        }
        # and the lock is not stale: each of pyproject's ranges holds its version
        for line in requirements:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            assert name in pins, f"{lock} lacks {name}: run scripts/relock"
            assert requirement.specifier.contains(pins[name]), f"{lock}: {name} {pins[name]}"


@pytest.mark.long
def test_readme_first_command_installs_and_runs_the_demo(tmp_path: Path) -> None:
    first = readme_commands()[0]
    install, demo = first.rsplit(" && ", 1)
    assert demo == "gateway demo"
    # the first command, as a new user runs it, in a fresh copy of the project; its
    # last step in an empty directory, since the demo needs nothing from where it runs
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout.splitlines()
    copy = tmp_path / "project"
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    result = subprocess.run(
        ["bash", "-c", f"{install} && cd {shlex.quote(str(elsewhere))} && {demo}"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=copy,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    check_transcript(result.stdout)
    assert not list(elsewhere.iterdir())  # and it leaves nothing behind


INTERACTIVE = """\
tg olga: Hello, is anyone there?
wait 2
tg anna #1: Hi Olga, Anna here. How can I help?
wait 1.5
tg anna #1: /close
wait 2
tap olga 4
wait 1.5
status
quit
"""


@pytest.mark.long
def test_the_interactive_demo_lets_you_play_everyone(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--interactive"],
        input=INTERACTIVE,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Telegram · Olga's chat             Olga: Hello, is anyone there?" in out
    assert "bot: Anna / Hi Olga, Anna here. How can I help?" in out  # what Olga sees
    assert "(olga tapped “4 ★★★★”)" in out
    assert "rated this conversation 4/5" in out
    assert "Open conversations" in out  # the status command


@pytest.mark.long
async def test_the_sandbox_runs_a_users_own_config(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    example = (ROOT / "config.example.toml").read_text()
    # the example answers from the FAQ only while no operator is free: in its business
    # hours Anna and Boris are, so the FAQ steps below would hang on the clock
    assert example.count('when = "no_operator_free"') == 1
    config.write_text(example.replace('when = "no_operator_free"', 'when = "always_first"'))
    seen: list[str] = []

    async def until(text: str) -> None:
        while not any(text in line for line in seen):
            line = await asyncio.wait_for(sandbox.stdout.readline(), SAFETY_SECONDS)  # type: ignore[union-attr]
            assert line, "the sandbox ended early:\n" + "".join(seen)
            seen.append(line.decode())

    for _attempt in range(3):
        # a port found free may be taken by a test in another worker before the
        # sandbox binds it: then again with other ports
        ports = [str(free_port()) for _ in range(5)]
        sandbox = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "sandbox", "--config", str(config),
            "--telegram-port", ports[0], "--slack-port", ports[1],
            "--mail-port", ports[2], "--gateway-mail-port", ports[3], "--site-port", ports[4],
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
        assert sandbox.stdin is not None and sandbox.stdout is not None
        seen.clear()
        try:
            await until("Then play the customers")
            break
        except (AssertionError, TimeoutError):
            if "address already in use" not in "".join(seen):
                if sandbox.returncode is None:
                    sandbox.kill()
                raise
            await sandbox.wait()

    gateway = None
    try:
        intro = "".join(seen)
        assert f'api_base = "http://127.0.0.1:{ports[0]}"' in intro
        assert f'api_base = "http://127.0.0.1:{ports[1]}/api/"' in intro
        assert "anna (telegram 100000001, slack U0000ANNA)" in intro
        copy = tmp_path / "config.sandbox.toml"
        gateway = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "run", "--config", str(copy),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, cwd=tmp_path,
        )  # fmt: skip
        sandbox.stdin.write(b"tg olga: How long does delivery take?\n")
        # the FAQ answers first, whatever the hour (open or closed)
        await until("bot: Delivery takes 2-4 working days.")
        await until("topic opened:")
        sandbox.stdin.write(b"slack carol: I forgot my password\n")
        await until("Use 'Forgot password' on the login page")
        sandbox.stdin.write(b"mail pat: I forgot my password\n")
        await until("Email · pat@example.org")
        # a visitor on the sandbox's shop page, as the widget speaks
        site = f"http://127.0.0.1:{ports[4]}"
        async with aiohttp.ClientSession() as http:
            async with http.get(site) as page:
                assert 'src="http://127.0.0.1:8080/widget.js"' in await page.text()
            visitor = Browser("http://127.0.0.1:8080", http, origin=site)
            await visitor.start()
            await visitor.connect()
            await visitor.send("Do you ship to Norway?")
            await until("Visitor")
            await visitor.disconnect()
        sandbox.stdin.write(b"quit\n")
        await sandbox.stdin.drain()
        assert await asyncio.wait_for(sandbox.wait(), SAFETY_SECONDS) == 0
    finally:
        for process in (gateway, sandbox):
            if process is not None and process.returncode is None:
                process.terminate()
                await process.wait()


async def test_a_step_that_does_not_happen_fails_the_demo_with_its_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # no time at all for any step: the first one cannot have happened yet
    monkeypatch.setattr(demo_module, "STEP_SECONDS", 0.0)
    out = io.StringIO()
    assert await demo_module.run_demo(out) == 1
    assert (
        out.getvalue().rstrip().endswith("The demo failed: step 1: Boris going away did not happen")
    )
