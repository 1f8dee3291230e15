"""The composition root: builds storage, core, handlers, adapters and workers.

Nothing else wires parts together or reads global state. Channel adapters are found
by scanning the ``adapters`` package for modules that expose ``PLUGIN``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

import handlers
from gateway.actions import ActionRegistry
from gateway.adapter import Adapter, ChannelPlugin
from gateway.autoreply import AutoReplies
from gateway.config import Config, LiveConfig
from gateway.core import Core
from gateway.customer_side import CustomerSide
from gateway.delivering import Delivering
from gateway.dispatcher import Dispatcher
from gateway.errors import ConfigError, GatewayError, ShuttingDown
from gateway.feedback import Feedback
from gateway.host import GatewayHost
from gateway.http import HttpServer
from gateway.message_book import MessageBook
from gateway.metrics import Metrics
from gateway.operator_side import OperatorSide
from gateway.outbox import OutboxWorker
from gateway.plugins import discover_plugins, load
from gateway.privacy import retention_cutoffs
from gateway.relay import Desk, Relay
from gateway.roles import Roles
from gateway.timers import Timers
from gateway.transactions import Transactions
from storage import Database, Repository, Transaction
from storage.leadership import RoleBoard, holder_name, role_locks
from storage.migrate import ensure_schema
from storage.models import Presence

log = logging.getLogger(__name__)


#: the role a process takes on a SQLite file before anything else: the one process
SQLITE_PROCESS_ROLE = "process"
#: messages added to SQLite's search index per tick, at most
SEARCH_BATCH = 5000
#: messages purged by retention per tick, at most
PURGE_BATCH = 5000
#: config sections a reload applies without a restart
LIVE_SECTIONS = (
    "faq", "texts", "operators", "routing", "hours", "sla", "csat", "replies", "tags", "privacy"
)  # fmt: skip
#: sections whose change moves deadlines: open conversations are planned again
TIMING_SECTIONS = ("operators", "routing", "hours", "sla")


def _fingerprint(path: Path) -> bytes | None:
    """The file's content: a config is small, and content (unlike mtime) cannot miss
    an edit made twice within the clock's resolution."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def _audited(actor: str, action: str, detail: str = "") -> Callable[[Transaction], Awaitable[None]]:
    """A transaction that only records an audit entry."""

    async def record(tx: Transaction) -> None:
        tx.audit(actor, action, detail=detail)

    return record


def _describe_changes(old: Config, new: Config) -> list[str]:
    """What a reload changes, as an admin reads it in the log."""
    changes = []
    before = {op.id: op for op in old.operators}
    after = {op.id: op for op in new.operators}
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    edited = sorted(i for i in set(before) & set(after) if before[i] != after[i])
    if added or removed or edited:
        parts = [f"+{i}" for i in added] + [f"-{i}" for i in removed] + [f"~{i}" for i in edited]
        changes.append("operators " + " ".join(parts))
    if old.core.faq != new.core.faq:
        ids_before = {e.id: e for e in old.core.faq.entries}
        ids_after = {e.id: e for e in new.core.faq.entries}
        parts = [f"+{i}" for i in sorted(set(ids_after) - set(ids_before))]
        parts += [f"-{i}" for i in sorted(set(ids_before) - set(ids_after))]
        parts += [
            f"~{i}"
            for i in sorted(set(ids_before) & set(ids_after))
            if ids_before[i] != ids_after[i]
        ]
        settings = old.core.faq.model_copy(update={"entries": []}) != new.core.faq.model_copy(
            update={"entries": []}
        )
        described = " ".join(parts + (["(settings)"] if settings else []))
        changes.append(f"faq {described}")
    if old.core.replies != new.core.replies:
        changes.append(f"replies ({len(new.core.replies)})")
    for name in ("texts", "routing", "hours", "sla", "csat", "tags", "privacy"):
        if getattr(old.core, name) != getattr(new.core, name):
            fields = [
                f
                for f in type(getattr(old.core, name)).model_fields
                if getattr(getattr(old.core, name), f) != getattr(getattr(new.core, name), f)
            ]
            changes.append(f"{name} ({', '.join(fields)})")
    return changes


def compose_core(
    repository: Repository,
    config_source: Callable[[], Config],
    *,
    workspaces: tuple[str, ...] = (),
    on_enqueued: Callable[[set[str]], None] = lambda destinations: None,
    links: Callable[[str, str], str | None] = lambda workspace, thread_ref: None,
) -> Core:
    """The core and its parts: the desk (config and workspaces), the relay that
    queues deliveries, routing, auto-replies, deadlines, feedback, both sides of
    intake, the outbox's side, and the operator actions from ``handlers``."""
    desk = Desk(config_source, workspaces, links)
    relay = Relay(desk)
    dispatcher = Dispatcher(desk, relay)
    timers = Timers(desk, relay, dispatcher)
    transactions = Transactions(repository, timers, on_enqueued)
    book = MessageBook(relay)
    actions = ActionRegistry()
    handlers.register(actions)
    return Core(
        repository=repository,
        desk=desk,
        relay=relay,
        dispatcher=dispatcher,
        timers=timers,
        transactions=transactions,
        customers=CustomerSide(
            desk,
            relay,
            dispatcher,
            AutoReplies(desk, relay, dispatcher),
            timers,
            Feedback(desk, relay),
            book,
        ),
        operators=OperatorSide(desk, relay, dispatcher, book),
        delivering=Delivering(repository, relay, transactions.run),
        actions=actions,
    )


#: the cyclic collector's first threshold while serving (Python's: 700 allocations).
#: A burst allocates fast (ORM rows, aiogram models, futures), and reference counting
#: alone frees nearly all of it: at 700, load 1 ran ~210 collections, 55 ms of its
#: ~1.2 s of CPU; at 10,000 (and start-up frozen), 0-3 collections, 0-5 ms.
GC_FIRST_THRESHOLD = 10_000


def settle_gc() -> None:
    """Once started (a serving process, not a gateway inside tests): what start-up
    made lives as long as the process (aiogram's and SQLAlchemy's models, some
    290,000 objects), so the collector stops walking it (``gc.freeze``). A full
    collection walked it all: 100-190 ms with the event loop stopped, in the middle
    of whatever burst set it off."""
    gc.freeze()
    _first, second, third = gc.get_threshold()
    gc.set_threshold(GC_FIRST_THRESHOLD, second, third)


class Gateway:
    def __init__(
        self,
        config: Config,
        *,
        plugins: dict[str, ChannelPlugin] | None = None,
        adapters: Sequence[Adapter] = (),
        serve_http: bool = True,
    ) -> None:
        self.config = config
        plugins = discover_plugins() if plugins is None else plugins
        given = {a.name for a in adapters}  # an adapter passed in takes its channel's place
        self.plugins = plugins
        #: what adapters hold: it follows reloads
        self.live = LiveConfig(lambda: self.config)
        built = [
            plugins[name].create(section, self.live)
            for name, section in config.channels.items()
            if name not in given
        ]
        self.adapters: list[Adapter] = [*built, *adapters]
        names = [a.name for a in self.adapters]
        if len(set(names)) != len(names):
            raise ValueError(f"two adapters share a name: {names}")
        self.db = Database(config.gateway.database_url)
        self.repository = Repository(self.db)
        self.core = compose_core(
            self.repository,
            lambda: self.config,
            workspaces=tuple(a.name for a in self.adapters if a.serves_workspace),
            on_enqueued=self._wake,
            links=self._thread_link,
        )
        self.workers = {a.name: OutboxWorker(self.core, a, config.outbox) for a in self.adapters}
        #: roles one process at a time may have (Telegram polling, the IMAP reader)
        self.roles = Roles(
            role_locks(self.db),
            RoleBoard(self.repository),
            holder_name(config.gateway.http_port if serve_http else None),
        )
        self.metrics = Metrics(lambda: self.workers.values(), self.roles.states)
        self.http = HttpServer(
            config.gateway.http_host,
            config.gateway.http_port,
            self._health,
            ready=self.readiness,
            metrics=self._metrics_page,
        )
        self._serve_http = serve_http
        self._started: list[Adapter] = []
        self._watcher: asyncio.Task[None] | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self._ticking: asyncio.Task[Any] | None = None
        self._stopped = asyncio.Event()
        self._accepting = True

    def _wake(self, destinations: Iterable[str]) -> None:
        for name in destinations:
            worker = self.workers.get(name)
            if worker is not None:
                worker.wake()

    async def _health(self) -> dict[str, Any]:
        return {
            "channels": [a.name for a in self.adapters],
            "workspaces": list(self.core.desk.workspaces),
        }

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether this process can do its work: the database answers, and every
        channel is connected to its platform (a reason for each that is not)."""
        details: dict[str, Any] = {}
        try:
            await asyncio.wait_for(self.repository.ping(), 5)
            details["database"] = "ok"
        except Exception as exc:  # any failure to answer is the answer
            details["database"] = f"unreachable: {type(exc).__name__}: {exc}"[:300]
        channels: dict[str, str] = {}
        for adapter in self.adapters:
            if adapter not in self._started:
                channels[adapter.name] = "not started"
                continue
            problem = await adapter.readiness()
            channels[adapter.name] = problem or "ok"
        details["channels"] = channels
        ready = details["database"] == "ok" and all(v == "ok" for v in channels.values())
        return ready and self._accepting, details

    async def _metrics_page(self) -> bytes:
        await self.metrics.refresh(self.repository, self.config)
        return self.metrics.render()

    async def start(self) -> None:
        config = self.config
        log.info("database: %s", self.db.display_url)
        if self.db.is_sqlite and not await self.roles.locks.try_take(SQLITE_PROCESS_ROLE):
            raise GatewayError(
                f"another gateway process is running on {self.db.display_url}: a SQLite "
                "database serves one process (stop the other, or use PostgreSQL to run several)"
            )
        await ensure_schema(self.db, config_path=str(config.path or "config.toml"))
        backlog = await self.repository.run(self._prepare_store)
        orphans = sorted(
            {d for (d, s), n in backlog.items() if s != "failed" and n and d not in self.workers}
        )
        for destination in orphans:
            log.warning(
                "deliveries to %r are waiting, but no %r channel is configured: they go out "
                "once its section is back in the config",
                destination,
                destination,
            )
        for worker in self.workers.values():
            worker.start()
        host = GatewayHost(self)
        try:
            for adapter in self.adapters:
                await adapter.start(host)
                self._started.append(adapter)
            # after the adapters: they add their webhook routes, and aiohttp freezes the
            # router when the server starts
            if self._serve_http:
                await self.http.start()
        except BaseException:
            await self.stop()
            raise
        if config.path is not None and config.gateway.reload_seconds > 0:
            self._watcher = asyncio.create_task(self._watch(config.path), name="config-watch")
        self._start_scheduler()
        if not self.adapters:
            log.warning(
                "no channel is configured: the gateway runs (database, HTTP /healthz) but no "
                "customer can reach it; add a [telegram], [slack] or [email] section"
            )
        else:
            log.info("channels: %s", ", ".join(a.name for a in self.adapters))
        log.info(
            "gateway started: %d operator(s), routing %s",
            len(config.operators),
            config.routing.strategy,
        )

    async def _prepare_store(self, tx: Transaction) -> dict[tuple[str, str], int]:
        """The operators registered, SQLite's interrupted deliveries freed; the outbox's
        backlog. Run with retries: processes starting together register the same
        operators, and the one that loses the race finds them there on its retry."""
        config = self.config
        await tx.ensure_operators(
            (op.id for op in config.operators), Presence(config.routing.initial_presence)
        )
        if self.db.is_sqlite:
            # one process owns a SQLite file: whatever was in flight died with the
            # previous process and can go out again at once
            released = await tx.release_leases()
            if released:
                log.info("%d deliveries interrupted by the last stop will be retried", released)
        return await tx.outbox_counts()

    def _start_scheduler(self) -> None:
        """APScheduler only ticks: the deadlines themselves are rows (Core.run_due), so
        the first tick, at once, catches up on whatever fell due while we were down."""
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.config.gateway.tick_seconds,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            id="deadlines",
        )
        self.scheduler.start()

    def _thread_link(self, workspace: str, thread_ref: str) -> str | None:
        adapter = next((a for a in self.adapters if a.name == workspace), None)
        return adapter.thread_link(thread_ref) if adapter is not None else None

    async def tick(self) -> int:
        """Act on the deadlines due now; never raises (the next tick tries again)."""
        if not self._accepting:
            return 0
        self._ticking = asyncio.current_task()
        try:
            taken = await self.core.run_due()
            if self.db.is_sqlite:
                # SQLite's search index follows the messages here, a batch a tick, so
                # that taking a message in never pays for it (storage.history_queries);
                # PostgreSQL's index follows by itself
                await self.repository.run(lambda tx: tx.index_messages(SEARCH_BATCH))
            cutoffs = retention_cutoffs(self.config)
            purged = (
                await self.repository.run(lambda tx: tx.purge_old(*cutoffs, limit=PURGE_BATCH))
                if any(cutoffs)
                else (0, 0)
            )
            if any(purged):
                log.info("retention: the words of %d message(s), %d file(s) removed", *purged)
        except Exception:
            log.exception("acting on due deadlines failed; the next tick tries again")
            return 0
        finally:
            self._ticking = None
        if taken:
            self.metrics.deadlines.inc(taken)
            log.info("%d deadline(s) acted on", taken)
        return taken

    async def _watch(self, path: Path) -> None:
        """Reload the config file when it changes (checked every reload_seconds)."""
        seen = _fingerprint(path)
        while True:
            await asyncio.sleep(self.config.gateway.reload_seconds)
            now = _fingerprint(path)
            if now != seen:
                seen = now
                try:
                    await self.reload()
                except Exception:
                    log.exception("config %s: the reload failed; the running config stays", path)

    async def reload(self) -> bool:
        """Apply a changed config file: faq, texts, operators and routing at once; the
        rest (database, HTTP, outbox, channels) only takes effect after a restart.
        An invalid file changes nothing."""
        old = self.config
        assert old.path is not None
        try:
            new = load(old.path, self.plugins)
        except ConfigError as error:
            log.error(
                "config %s is invalid and was not applied; the running config stays:\n%s",
                old.path,
                "\n".join(error.problems),
            )
            return False
        changes = _describe_changes(old, new)
        needs_restart = [
            name
            for name in ("gateway", "outbox")
            if getattr(old.core, name) != getattr(new.core, name)
        ]
        needs_restart += [
            f"[{name}]"
            for name in sorted(set(old.channels) | set(new.channels))
            if old.channels.get(name) != new.channels.get(name)
        ]
        if needs_restart:
            log.warning(
                "config %s: %s changed; that takes a restart (the rest is applied now)",
                old.path,
                ", ".join(needs_restart),
            )
        if not changes:
            return True
        core = old.core.with_sections(**{name: getattr(new.core, name) for name in LIVE_SECTIONS})
        presence = Presence(core.routing.initial_presence)
        await self.repository.run(
            lambda tx: tx.ensure_operators((op.id for op in core.operators), presence)
        )
        self.config = replace(old, core=core)
        log.info("config %s reloaded: %s", old.path, "; ".join(changes))
        await self.repository.run(_audited("config", "reload", detail="; ".join(changes)))
        if any(getattr(old.core, name) != getattr(core, name) for name in TIMING_SECTIONS):
            moved = await self.core.replan_open()
            if moved:
                log.info("deadlines of %d open conversation(s) planned again", moved)
        return True

    def check_accepting(self) -> None:
        if not self._accepting:
            raise ShuttingDown("the gateway is stopping; send this event again after restart")

    async def stop(self) -> None:
        """Stop intake, let in-flight deliveries finish within the timeout, close.

        Safe to call twice (a signal during a stop already under way)."""
        if not self._accepting:
            return
        self._accepting = False
        # the roles go to another process at once, not after the deliveries below
        self.roles.stand_down()
        if self._watcher is not None:
            self._watcher.cancel()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if self._ticking is not None:
            # a tick in progress finishes its transaction (each is short)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._ticking), 10)
        timeout = self.config.gateway.shutdown_timeout_seconds
        log.info("stopping: finishing in-flight deliveries (up to %gs)", timeout)
        await asyncio.gather(*(w.stop(timeout) for w in self.workers.values()))
        for adapter in reversed(self._started):
            try:
                await adapter.stop()
            except Exception:
                log.exception("adapter %s did not stop cleanly", adapter.name)
        self._started.clear()
        await self.roles.close()
        await self.http.stop()
        await self.db.dispose()
        log.info("stopped")

    def request_stop(self) -> None:
        self._stopped.set()

    async def run(self) -> None:
        """Start, serve until SIGINT/SIGTERM, stop gracefully."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        await self.start()
        settle_gc()
        try:
            await self._stopped.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await self.stop()
