"""`gateway export` and `gateway audit`: a customer's data for a subject access
request, and the trail of who did what. Registered by ``gateway.cli``."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.cli_history import no_customer, run_on_database


def cmd_export(args: argparse.Namespace) -> int:
    from gateway.privacy import export_customer

    def write(config: Any, data: Any) -> str:
        if data is None:
            raise no_customer(args.customer)
        text = json.dumps(data, ensure_ascii=False, indent=1)
        if args.out == "-":
            return text
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        count = sum(len(c["messages"]) for c in data["conversations"])
        return (
            f"{args.out}: customer {data['customer']['id']}, {len(data['conversations'])} "
            f"conversation(s), {count} message(s)"
        )

    names = lambda config: {op.id: op.name for op in config.operators}  # noqa: E731
    return run_on_database(
        args,
        lambda repository, config: export_customer(repository, args.customer, names(config)),
        write,
    )


def cmd_revoke(args: argparse.Namespace) -> int:
    from gateway.privacy import revoke_sessions

    return run_on_database(
        args,
        lambda repository, _: revoke_sessions(repository, args.customer),
        lambda config, answer: answer,
    )


def cmd_erase(args: argparse.Namespace) -> int:
    from gateway.privacy import erase_customer, removal_outcomes

    async def erase(repository: Any, _: Any) -> tuple[Any, list[str]]:
        erasure = await erase_customer(repository, args.customer, yes=args.yes)
        if erasure is None or not erasure.done or not erasure.conversations:
            return erasure, []
        return erasure, await removal_outcomes(repository, erasure, args.wait)

    def show(config: Any, result: tuple[Any, list[str]]) -> str:
        erasure, outcomes = result
        if erasure is None:
            raise no_customer(args.customer)
        return "\n".join([*erasure.lines(), *outcomes])

    return run_on_database(args, erase, show)


def cmd_audit(args: argparse.Namespace) -> int:
    from gateway import cli

    async def read(repository: Any, config: Any) -> list[Any]:
        since = (
            cli._day(args.since, config.core.schedule.zone, "--since")
            if args.since
            else datetime.now(UTC) - timedelta(days=30)
        )
        async with repository.transaction() as tx:
            return list(await tx.audit_events(since, actor=args.actor, limit=args.limit))

    def show(config: Any, events: list[Any]) -> str:
        if not events:
            return "No entries."
        zone = config.core.schedule.zone
        rows = [
            [
                f"{e.at.astimezone(zone):%Y-%m-%d %H:%M:%S}",
                e.actor,
                e.action,
                f"#{e.conversation_id}" if e.conversation_id else "",
                str(e.customer_id or ""),
                e.detail,
            ]
            for e in events
        ]
        return cli_table(["at", "who", "action", "conversation", "customer", "detail"], rows)

    return run_on_database(args, read, show)


def cli_table(headers: list[str], rows: list[list[str]]) -> str:
    from gateway.status import table

    return table(headers, rows)


def add_commands(sub: Any, config_arguments: Any) -> None:
    export = sub.add_parser(
        "export", help="everything kept about one customer, as JSON (a subject access request)"
    )
    config_arguments(export)
    export.add_argument(
        "--customer", required=True, help="the customer's number, @username, platform id or address"
    )
    export.add_argument("--out", required=True, help="the JSON file to write (- for stdout)")
    export.set_defaults(func=cmd_export)

    erase = sub.add_parser(
        "erase", help="remove one customer's personal data (says what first, without --yes)"
    )
    config_arguments(erase)
    erase.add_argument(
        "--customer", required=True, help="the customer's number, @username, platform id or address"
    )
    erase.add_argument("--yes", action="store_true", help="erase, rather than say what would go")
    erase.add_argument(
        "--wait",
        type=float,
        default=15,
        help="seconds to wait for the running gateway to remove the workspace copies (15)",
    )
    erase.set_defaults(func=cmd_erase)

    revoke = sub.add_parser(
        "revoke", help="sign a customer out of the web chat everywhere (their history stays)"
    )
    config_arguments(revoke)
    revoke.add_argument(
        "--customer", required=True, help="the customer's number, or their visitor id (v-...)"
    )
    revoke.set_defaults(func=cmd_revoke)

    audit = sub.add_parser("audit", help="who did what: operators' actions, reloads, exports")
    config_arguments(audit)
    audit.add_argument("--since", help="from this day on, YYYY-MM-DD (default: 30 days ago)")
    audit.add_argument("--actor", help="one operator's id (or admin:<login>, config)")
    audit.add_argument("--limit", type=int, default=1000, help="at most this many (default 1000)")
    audit.set_defaults(func=cmd_audit)
