"""`/metrics` in the Prometheus text format (prometheus-client).

Counters of what happened in this process (messages in, deliveries made and failed,
429s, ingest latency) are kept as it happens; gauges of the shared state (queue,
operators, outbox backlog) are read from the database at scrape time, so every
process of a PostgreSQL deployment reports the same, true figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.config import Config
from gateway.status import collect_status
from storage import Presence, Repository

#: seconds from an event reaching the core to its commit
INGEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WorkerCounts(Protocol):
    destination: str
    sent: int
    failed: int
    rate_limited: int


class _Workers(Collector):
    """The outbox workers' own counts, as counters (they only ever grow)."""

    def __init__(self, workers: Callable[[], Iterable[WorkerCounts]]) -> None:
        self._workers = workers

    def collect(self) -> Iterator[Metric]:
        sent = CounterMetricFamily(
            "gateway_messages_out", "Deliveries made, by destination", labels=["destination"]
        )
        failed = CounterMetricFamily(
            "gateway_delivery_failures",
            "Deliveries given up on (operators are told in the conversation)",
            labels=["destination"],
        )
        limited = CounterMetricFamily(
            "gateway_rate_limited", "429 answers received from a platform", labels=["destination"]
        )
        for worker in self._workers():
            sent.add_metric([worker.destination], worker.sent)
            failed.add_metric([worker.destination], worker.failed)
            limited.add_metric([worker.destination], worker.rate_limited)
        yield from (sent, failed, limited)


class Metrics:
    def __init__(
        self,
        workers: Callable[[], Iterable[WorkerCounts]],
        roles: Callable[[], dict[str, bool]] = dict,
    ) -> None:
        self._roles = roles
        # a registry of our own: two gateways in one process (tests) never collide
        self.registry = CollectorRegistry()
        self.registry.register(_Workers(workers))
        self.messages_in = Counter(
            "gateway_messages_in",
            "Messages taken in, by channel and side (customer or workspace)",
            ["channel", "side"],
            registry=self.registry,
        )
        self.ingest_seconds = Histogram(
            "gateway_ingest_seconds",
            "Time from an event reaching the core to its commit",
            ["channel"],
            buckets=INGEST_BUCKETS,
            registry=self.registry,
        )
        self.deadlines = Counter(
            "gateway_deadlines_acted", "Deadlines acted on by this process", registry=self.registry
        )
        self.queue_length = Gauge(
            "gateway_queue_length", "Conversations waiting for an operator", registry=self.registry
        )
        self.oldest_waiting = Gauge(
            "gateway_queue_oldest_seconds",
            "How long the oldest waiting conversation has waited (0 when none)",
            registry=self.registry,
        )
        self.open_conversations = Gauge(
            "gateway_open_conversations",
            "Conversations not closed, by status",
            ["status"],
            registry=self.registry,
        )
        self.operators_online = Gauge(
            "gateway_operators_online", "Operators online", registry=self.registry
        )
        self.operator_load = Gauge(
            "gateway_operator_load",
            "Open conversations each operator holds",
            ["operator"],
            registry=self.registry,
        )
        self.operator_capacity = Gauge(
            "gateway_operator_capacity",
            "Conversations each operator may hold (max_chats)",
            ["operator"],
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "gateway_outbox_backlog",
            "Deliveries not made yet, by destination and state (pending, sending, failed)",
            ["destination", "state"],
            registry=self.registry,
        )
        self.role_held = Gauge(
            "gateway_role_held",
            "1 for each role this process holds, 0 for one it stands by for",
            ["role"],
            registry=self.registry,
        )
        self.deadlines_overdue = Gauge(
            "gateway_deadlines_overdue",
            "Deadlines due and not yet acted on (growing: no process is ticking)",
            registry=self.registry,
        )

    async def refresh(self, repository: Repository, config: Config) -> None:
        """Read the shared state into the gauges: the same reading `gateway status` shows."""
        status = await collect_status(repository, config)
        self.queue_length.set(status.queue_length)
        wait = status.oldest_wait
        self.oldest_waiting.set(wait.total_seconds() if wait else 0)
        for name, count in status.open_by_status.items():
            self.open_conversations.labels(name).set(count)
        self.operator_load.clear()
        self.operator_capacity.clear()
        for operator in status.operators:
            self.operator_load.labels(operator.id).set(operator.load)
            self.operator_capacity.labels(operator.id).set(operator.max_chats)
        self.operators_online.set(sum(o.presence == Presence.ONLINE for o in status.operators))
        self.outbox_backlog.clear()
        for (destination, state), rows in status.outbox.items():
            self.outbox_backlog.labels(destination, state).set(rows)
        self.deadlines_overdue.set(status.overdue)
        self.role_held.clear()
        for role, held in self._roles().items():
            self.role_held.labels(role).set(1 if held else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
