"""`gateway history`, `gateway search` and `gateway link`: a customer's past, what was
written, and two identities made one person. Registered by ``gateway.cli``."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any


def no_customer(reference: str) -> LookupError:
    return LookupError(
        f"no customer {reference!r} (a number, @username, a platform id or an address)"
    )


def cmd_history(args: argparse.Namespace) -> int:
    from gateway.history import customer_history, render_history

    def show(config: Any, history: Any) -> str:
        if history is None:
            raise no_customer(args.customer)
        names = {op.id: op.name for op in config.operators}
        return render_history(history, names, config.core.schedule.zone)

    return run_on_database(
        args, lambda repository, _: customer_history(repository, args.customer), show
    )


def cmd_search(args: argparse.Namespace) -> int:
    from gateway import cli
    from gateway.history import render_hits, search

    def show(config: Any, hits: Any) -> str:
        return render_hits(hits, config.core.schedule.zone)

    def since(config: Any) -> datetime:
        if not args.since:
            return datetime(1970, 1, 1, tzinfo=UTC)
        return cli._day(args.since, config.core.schedule.zone, "--since")

    return run_on_database(
        args,
        lambda repository, config: search(repository, args.text, since(config), args.limit),
        show,
    )


def cmd_link(args: argparse.Namespace) -> int:
    from gateway.history import link_customers

    return run_on_database(
        args,
        lambda repository, _: link_customers(repository, args.customer, args.into),
        lambda config, answer: answer,
    )


def run_on_database(args: argparse.Namespace, work: Any, show: Any) -> int:
    """Load the config (no channel secrets needed), run ``work(repository, config)``
    on its migrated database, print ``show(config, result)``."""
    from gateway import cli
    from gateway.errors import ConfigError
    from storage import DatabaseError

    try:
        config = cli._load(args.config, channels=False)
    except ConfigError as error:
        return cli._problems(error)
    try:
        result = cli._read_database(
            config, args.config, lambda repository: work(repository, config)
        )
        print(show(config, result))
    except (LookupError, ValueError) as error:
        print(error, file=sys.stderr)
        return cli.EXIT_INVALID
    except (DatabaseError, OSError) as error:
        print(f"cannot read the database: {error}", file=sys.stderr)
        return cli.EXIT_FAILURE
    return cli.EXIT_OK


def add_commands(sub: Any, config_arguments: Any) -> None:
    history = sub.add_parser("history", help="a customer's conversations, on every channel")
    config_arguments(history)
    history.add_argument(
        "--customer", required=True, help="the customer's number, @username, platform id or address"
    )
    history.set_defaults(func=cmd_history)

    search = sub.add_parser("search", help="find messages by their words (newest first)")
    search.add_argument("text", help="the words to find (all of them)")
    config_arguments(search)
    search.add_argument("--since", help="only messages from this day on, YYYY-MM-DD")
    search.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    search.set_defaults(func=cmd_search)

    link = sub.add_parser(
        "link", help="make two customers one person (their identities and conversations join)"
    )
    config_arguments(link)
    link.add_argument("--customer", required=True, help="the customer to merge (it goes away)")
    link.add_argument("--into", required=True, help="the customer who keeps everything")
    link.set_defaults(func=cmd_link)
