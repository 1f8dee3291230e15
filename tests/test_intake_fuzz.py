"""Wrong-shaped input never stops intake: hundreds of JSON-valid Telegram updates and
Slack events with fields of the wrong type, missing, huge or unknown are taken (or
set aside) and a good message sent after them is taken in within seconds, the
gateway ready all along.

The cases are generated from valid updates and events, each with one or two of
its fields, at any depth, replaced by a value of another shape or removed, or
with fields added; a fixed seed makes a failure repeatable.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from typing import Any

from aiogram.types import Update
from sqlmodel import select

from gateway.app import Gateway
from gateway.events import UNREADABLE_TEXT, Inbound, IngestResult
from storage import Message
from tests.slack_support import slack_desk
from tests.telegram_support import eventually, telegram_desk

JSON = dict[str, Any]

#: values of every shape, for a field that expects another
WRONG: list[Callable[[random.Random], Any]] = [
    lambda r: "x",
    lambda r: "",
    lambda r: [],
    lambda r: [1, "a", None],
    lambda r: {},
    lambda r: {"id": "nope", "type": 7},
    lambda r: None,
    lambda r: True,
    lambda r: -1,
    lambda r: 0,
    lambda r: 2**70,
    lambda r: 1.5,
    lambda r: "é" * r.randint(1, 20_000),
    lambda r: "\ud800 lone surrogate",
    lambda r: "../../etc/passwd",
    lambda r: r.randint(-(2**40), 2**40),
]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if path:
        yield path
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*path, index))


def _mutated(template: JSON, rng: random.Random) -> JSON:
    out = copy.deepcopy(template)
    paths = list(_paths(out))
    for path in rng.sample(paths, k=min(len(paths), rng.choice((1, 1, 2)))):
        parent: Any = out
        for step in path[:-1]:
            try:
                parent = parent[step]
            except (KeyError, IndexError, TypeError):
                break
        else:
            last = path[-1]
            try:
                if rng.random() < 0.2 and isinstance(parent, dict):
                    parent.pop(last, None)
                else:
                    parent[last] = rng.choice(WRONG)(rng)
            except (KeyError, IndexError, TypeError):
                pass
    if rng.random() < 0.1:
        out[f"field_{rng.randint(0, 99)}"] = rng.choice(WRONG)(rng)
    return out


def cases(templates: list[JSON], count: int, seed: int) -> list[JSON]:
    rng = random.Random(seed)
    return [_mutated(rng.choice(templates), rng) for _ in range(count)]


def telegram_templates(forum: int, anna: int) -> list[JSON]:
    user = {"id": 7001, "is_bot": False, "first_name": "Fuzz", "language_code": "en"}
    private = {"id": 7001, "type": "private", "first_name": "Fuzz"}
    group = {"id": forum, "type": "supergroup", "title": "Support desk", "is_forum": True}
    operator = {"id": anna, "is_bot": False, "first_name": "Anna"}
    message = {"message_id": 11, "date": 1_700_000_000, "chat": private, "from": user}
    return [
        {"message": {**message, "text": "hello"}},
        {"edited_message": {**message, "text": "hello again", "edit_date": 1_700_000_100}},
        {
            "message": {
                **message,
                "photo": [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}],
                "media_group_id": "g1",
            }
        },
        {
            "message": {
                "message_id": 12,
                "date": 1_700_000_000,
                "chat": group,
                "from": operator,
                "message_thread_id": 3,
                "is_topic_message": True,
                "text": "/snooze 2h",
            }
        },
        {
            "callback_query": {
                "id": "q1",
                "from": operator,
                "chat_instance": "c",
                "data": "claim",
                "message": {"message_id": 13, "date": 1_700_000_000, "chat": group},
            }
        },
        {"brand_new_kind": {"whatever": [1, 2, 3]}},
    ]


async def test_wrong_shaped_telegram_updates_never_stop_intake(sqlite_url: str) -> None:
    async with telegram_desk(sqlite_url) as desk:
        sandbox = desk.sandbox
        templates = telegram_templates(desk.forum["id"], desk.anna["id"])
        for body in cases(templates, 300, seed=33):
            sandbox.world.push_raw(body)
        olga = sandbox.add_user("Olga")
        sandbox.send(olga, "I am real")
        # taken in within seconds, not after every bad update's tries: she is greeted
        # (the valid ones among the cases opened topics, which take the group's 20
        # messages a minute: hers is not waited for there)
        await eventually(lambda: sandbox.received(olga["id"]), limit=30)
        ready, checks = await desk.gateway.readiness()
        assert ready, checks
        # and intake goes on: one more, after everything above was dealt with
        sandbox.send(olga, "still there?")
        await eventually(lambda: stored(desk.gateway, "still there?"), limit=30)


async def stored(gateway: Gateway, text: str) -> bool:
    async with gateway.repository.transaction() as tx:
        found = await tx.session.exec(select(Message.id).where(Message.text == text))
        return found.first() is not None


def slack_templates(channel: str, customer: str, anna: str) -> list[JSON]:
    return [
        {"type": "message", "channel": "D0FUZZ", "user": customer, "text": "hi", "ts": "1.1"},
        {
            "type": "message",
            "channel": channel,
            "user": anna,
            "text": "answer",
            "ts": "2.2",
            "thread_ts": "1.0",
        },
        {
            "type": "message",
            "subtype": "message_changed",
            "channel": "D0FUZZ",
            "message": {"user": customer, "text": "edited", "ts": "1.1"},
            "previous_message": {"ts": "1.1"},
            "ts": "3.3",
        },
        {
            "type": "message",
            "channel": "D0FUZZ",
            "user": customer,
            "ts": "4.4",
            "files": [{"id": "F1", "name": "a.txt", "url_private": "http://x/a", "size": 3}],
        },
        {"type": "app_mention", "channel": channel, "user": anna, "text": "<@U0> status"},
        {"type": "reaction_added", "user": customer, "reaction": "+1"},
    ]


async def test_wrong_shaped_slack_events_never_stop_intake(sqlite_url: str) -> None:
    async with slack_desk(sqlite_url) as desk:
        sandbox = desk.sandbox
        customer = sandbox.add_user("Fuzz", name="fuzz")
        templates = slack_templates(desk.channel["id"], customer["id"], desk.anna["id"])
        for event in cases(templates, 300, seed=33):
            sandbox.emit(sandbox.world.event_callback(event))
        carol = sandbox.add_user("Carol Smith", name="carol")
        sandbox.post(carol, "I am real")
        await eventually(lambda: desk.to_customer(carol), limit=30)  # greeted
        ready, checks = await desk.gateway.readiness()
        assert ready, checks
        sandbox.post(carol, "still there?")
        await eventually(lambda: stored(desk.gateway, "still there?"), limit=30)


async def test_a_slack_message_that_cannot_be_read_leaves_operators_a_placeholder(
    sqlite_url: str,
) -> None:
    async with slack_desk(sqlite_url) as desk:
        sandbox = desk.sandbox
        dave = sandbox.add_user("Dave Odd", name="dave")
        dm = sandbox.dm(dave)
        event = sandbox.world.message_event(dm, sandbox.world.user_message(dave, dm, "x"))
        event["files"] = 7  # what no Slack client sends
        sandbox.emit(sandbox.world.event_callback(event))
        await eventually(lambda: stored(desk.gateway, PLACEHOLDER))
        await eventually(lambda: any("cannot read" in t for t in desk.texts("Dave Odd")))


PLACEHOLDER = UNREADABLE_TEXT


async def test_an_update_given_up_on_stays_skipped_after_a_restart(sqlite_url: str) -> None:
    """Given up on after its tries, an update is kept as set aside: fetched again by
    a process that has never seen it (after a restart), it is skipped at its first
    failure instead of being tried again from the start."""
    async with telegram_desk(sqlite_url) as desk:
        core = desk.gateway.core
        real = core.ingest
        poisoned = 0

        async def ingest(inbound: Inbound) -> IngestResult:
            nonlocal poisoned
            if "POISON" in inbound.text:  # a bug that meets this one message
                poisoned += 1
                raise RuntimeError("a bug")
            return await real(inbound)

        core.ingest = ingest  # type: ignore[method-assign]
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "POISON")
        await eventually(lambda: stored(desk.gateway, UNREADABLE_TEXT))
        assert poisoned == 5
        adapter = next(a for a in desk.gateway.adapters if a.name == "telegram")
        update = Update.model_validate(
            {
                "update_id": 1,
                "message": {
                    "message_id": 1,
                    "date": 1_700_000_000,
                    "chat": {"id": olga["id"], "type": "private", "first_name": "Olga"},
                    "from": {"id": olga["id"], "is_bot": False, "first_name": "Olga"},
                    "text": "POISON",
                },
            }
        )
        # a fresh process: no tries counted, nothing settled in memory
        assert await adapter._take([update], {}, set(), adapter.main_id) is None
        assert poisoned == 6  # one try, then skipped: it was set aside before
