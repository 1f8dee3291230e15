"""Several `gateway run` processes on one database, for the scale-out benchmark and
tests: each a child process with its own HTTP port, a round-robin balancer in front
of them, and who holds which role (``role_holders``)."""

from __future__ import annotations

import asyncio
import itertools
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web
from sqlalchemy.engine import make_url

from storage import Database, Repository
from storage.leadership import RoleBoard

ROOT = Path(__file__).resolve().parents[1]

#: request headers a balancer does not pass on as they came
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


def free_port() -> int:
    """A port nothing listens on now, for a process to take."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GatewayProcess:
    """`gateway run --config ...` in a child process, its output in a file."""

    def __init__(self, config: Path, log: Path, port: int) -> None:
        self.config, self.log, self.port = config, log, port
        self.child: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "run", "--config", str(self.config),
                cwd=ROOT, stdout=out, stderr=out,
            )  # fmt: skip

    async def healthy(self) -> bool:
        """Whether it answers /healthz (raises when it exited: its log says why)."""
        assert self.child is not None
        if self.child.returncode is not None:
            raise RuntimeError(f"the gateway exited:\n{self.log.read_text()[-3000:]}")
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{self.port}/healthz") as response,
            ):
                return response.status == 200
        except aiohttp.ClientError:
            return False

    async def until_healthy(self, limit: float = 120.0) -> None:
        """Wait until it answers /healthz (``limit``: a broken start fails, not hangs)."""
        deadline = asyncio.get_running_loop().time() + limit
        while True:
            if await self.healthy():
                return
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(
                    f"no /healthz within {limit:g}s:\n{self.log.read_text()[-3000:]}"
                )
            await asyncio.sleep(0.1)

    async def metrics(self) -> str:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{self.port}/metrics") as response,
        ):
            return await response.text()

    async def kill(self) -> None:
        if self.child is not None and self.child.returncode is None:
            self.child.kill()
            await self.child.wait()

    async def terminate(self) -> int:
        """SIGTERM, as a rolling restart or `systemctl stop` sends it; the exit code."""
        assert self.child is not None
        if self.child.returncode is None:
            self.child.send_signal(signal.SIGTERM)
        return await self.child.wait()


class RoundRobin:
    """A balancer: each request to the next process in turn, as-is; 502 when that
    process does not answer (the platform then sends the event again)."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self._turn = itertools.cycle(range(len(ports)))
        self.forwarded: dict[int, int] = {port: 0 for port in ports}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._session = aiohttp.ClientSession()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        port = self.ports[next(self._turn)]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        body = await request.read()
        try:
            async with self._session.request(
                request.method,
                f"http://127.0.0.1:{port}{request.path_qs}",
                data=body,
                headers=headers,
            ) as answer:
                content = await answer.read()
                self.forwarded[port] += 1
                return web.Response(
                    status=answer.status,
                    body=content,
                    content_type=answer.content_type,
                )
        except aiohttp.ClientError:
            return web.Response(status=502, text="bad gateway")


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database(server: str, prefix: str = "gw_bench") -> AsyncIterator[str]:
    """A new database on ``server`` (any database's URL there), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_dsn(server))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(_dsn(server))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def role_holders(url: str) -> dict[str, str]:
    """Who holds each role now, as the holders wrote it (role -> holder)."""
    db = Database(url)
    try:
        return {role: holder for role, holder, *_ in await RoleBoard.read(Repository(db))}
    finally:
        await db.dispose()


def held_by(holder: str, process: GatewayProcess) -> bool:
    """Whether ``holder`` (host:pid:port) names ``process``."""
    parts = holder.split(":")
    return len(parts) >= 2 and parts[1] == str(process.pid)
