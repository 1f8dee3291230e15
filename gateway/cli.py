"""`gateway` command line: demo, run, check-config, migrate, status, report, faq (and
history, search, link: ``gateway.cli_history``; export, audit: ``gateway.cli_privacy``)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import NoReturn
from zoneinfo import ZoneInfo

from gateway import __version__
from gateway.config import Config
from gateway.errors import ConfigError, GatewayError
from gateway.logs import setup_logging

EXIT_OK, EXIT_FAILURE, EXIT_INVALID = 0, 1, 2
DEFAULT_CONFIG = "config.toml"


def _load(path: str, *, channels: bool = True) -> Config:
    """The config; ``channels=False`` for commands that never talk to a platform (they
    then need none of the platforms' secrets)."""
    from gateway.plugins import load

    return load(path, channels=channels)


def _summary(config: Config) -> str:
    ops = ", ".join(op.id for op in config.operators) or "none"
    channels = ", ".join(sorted(config.channels)) or "none"
    return (
        f"{config.path}: valid - {len(config.operators)} operator(s) ({ops}), "
        f"routing {config.routing.strategy}, database {config.gateway.shown_database_url}, "
        f"channels: {channels}"
    )


def _problems(error: ConfigError) -> int:
    for line in error.problems:
        print(line, file=sys.stderr)
    print(f"{len(error.problems)} problem(s) found", file=sys.stderr)
    return EXIT_INVALID


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        config = _load(args.config)
    except ConfigError as error:
        return _problems(error)
    for line in config.warnings:
        print(f"warning: {line}", file=sys.stderr)
    print(_summary(config))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from gateway.app import Gateway
    from storage import DatabaseError

    try:
        config = _load(args.config)
    except ConfigError as error:
        return _problems(error)
    setup_logging(
        config.gateway.log_level,
        config.secrets,
        json_lines=config.gateway.log_format == "json",
    )
    logging.getLogger("gateway").info("%s", _summary(config))
    for line in config.warnings:
        logging.getLogger("gateway").warning("%s", line)
    try:
        asyncio.run(Gateway(config).run())
    except (DatabaseError, GatewayError, OSError) as error:
        logging.getLogger("gateway").error("cannot start: %s", error)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    from storage import Database, DatabaseError
    from storage.migrate import upgrade

    try:
        config = _load(args.config, channels=False)
    except ConfigError as error:
        return _problems(error)

    async def migrate() -> tuple[str | None, str]:
        db = Database(config.gateway.database_url)
        try:
            return await upgrade(db)
        finally:
            await db.dispose()

    try:
        before, after = asyncio.run(migrate())
    except (DatabaseError, OSError) as error:
        print(f"cannot migrate: {error}", file=sys.stderr)
        return EXIT_FAILURE
    where = config.gateway.shown_database_url
    if before == after:
        print(f"{where}: schema already at {after}, nothing to do")
    else:
        print(f"{where}: schema migrated from {before or 'empty'} to {after}")
    return EXIT_OK


def _read_database(config: Config, config_path: str, work):
    """Run ``work(repository)`` against the config's database, once it is migrated.
    Raises ``storage.DatabaseError`` (or ``OSError``) when it cannot be read."""
    from storage import Database, DatabaseError, Repository
    from storage.schema_version import current_revision, head_revision

    async def read():
        db = Database(config.gateway.database_url)
        try:
            if await current_revision(db) != head_revision():
                raise DatabaseError(
                    f"the database at {db.display_url} is not migrated: run "
                    f"`gateway migrate --config {config_path}` (or start the gateway once)"
                )
            return await work(Repository(db))
        finally:
            await db.dispose()

    return asyncio.run(read())


def cmd_status(args: argparse.Namespace) -> int:
    from gateway.status import collect_status, render_status
    from storage import DatabaseError, Repository

    try:
        config = _load(args.config, channels=False)
    except ConfigError as error:
        return _problems(error)

    async def status(repository: Repository) -> str:
        return render_status(await collect_status(repository, config))

    try:
        print(_read_database(config, args.config, status))
    except (DatabaseError, OSError) as error:
        print(f"cannot read status: {error}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _day(value: str, zone: ZoneInfo, flag: str) -> datetime:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{flag} {value!r}: not a date (use YYYY-MM-DD)") from None
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gateway.report import load_report
    from gateway.report_html import render_html
    from gateway.report_text import render_csv, render_json, render_text
    from storage import DatabaseError, Repository

    try:
        config = _load(args.config, channels=False)
    except ConfigError as error:
        return _problems(error)
    zone = config.core.schedule.zone
    try:
        # --until names the last day included
        until = (
            _day(args.until, zone, "--until") + timedelta(days=1)
            if args.until
            else datetime.now(UTC)
        )
        since = (
            _day(args.since, zone, "--since")
            if args.since
            else _day((until - timedelta(days=30)).astimezone(zone).date().isoformat(), zone, "")
        )
    except ValueError as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID
    if since >= until:
        print("--since must be before --until", file=sys.stderr)
        return EXIT_INVALID

    async def work(repository: Repository):
        return await load_report(
            repository, config, since=since, until=until, by=args.by, tag=_tag(args.tag)
        )

    try:
        report = _read_database(config, args.config, work)
    except (DatabaseError, OSError) as error:
        print(f"cannot read the database: {error}", file=sys.stderr)
        return EXIT_FAILURE
    renders = {"text": render_text, "csv": render_csv, "json": render_json}
    print(renders[args.format](report))
    if args.html:
        path = Path(args.html)
        try:
            path.write_text(render_html(report), encoding="utf-8")
        except OSError as error:
            print(f"cannot write {path}: {error}", file=sys.stderr)
            return EXIT_FAILURE
        print(f"HTML report: {path.resolve()}", file=sys.stderr)
    return EXIT_OK


def _tag(value: str | None) -> str | None:
    """A tag as /tag stores it (``#VIP`` -> ``vip``)."""
    from gateway.config.workbench import normal_tag

    return normal_tag(value) if value else None


def _share(value: str) -> float:
    try:
        share = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 < share <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1")
    return share


def cmd_faq_ask(args: argparse.Namespace) -> int:
    from gateway.faq import build_matcher, decide
    from gateway.faq_explain import explain

    try:
        config = _load(args.config, channels=False)
    except ConfigError as error:
        return _problems(error)
    section = config.core.faq
    if not section.entries:
        print(f"{config.path}: no FAQ entries ([[faq.entries]])", file=sys.stderr)
        return EXIT_FAILURE
    matcher = build_matcher(section)
    matches = matcher.match(args.question, limit=max(3, args.limit))
    decision = decide(matches, section.threshold, section.suggest_threshold)
    print("\n".join(explain(matcher, section, args.question, matches[: args.limit], decision)))
    return EXIT_OK


def cmd_faq_eval(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from gateway.faq import build_matcher
    from gateway.faq_eval import outcomes, read_cases, report_json, report_lines, unknown_ids

    try:
        config = _load(args.config, channels=False)
    except ConfigError as error:
        return _problems(error)
    try:
        cases = read_cases(Path(args.file))
    except (OSError, ValueError, UnicodeDecodeError) as error:
        print(f"{args.file}: {error}", file=sys.stderr)
        return EXIT_FAILURE
    section = config.core.faq
    unknown = unknown_ids(cases, section)
    if unknown:
        print(
            f"{args.file}: expected entries the FAQ in {config.path} does not have: "
            + ", ".join(unknown),
            file=sys.stderr,
        )
        return EXIT_FAILURE
    results = outcomes(build_matcher(section), section, cases)
    if args.json:
        print(
            json.dumps(report_json(results, section, args.precision), ensure_ascii=False, indent=1)
        )
    else:
        print("\n".join(report_lines(results, section, args.precision, wrong_only=args.wrong)))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    return asyncio.run(run_demo(interactive=args.interactive))


def cmd_sandbox(args: argparse.Namespace) -> int:
    from sandbox.standalone import Ports, run_sandbox

    ports = Ports(
        args.telegram_port, args.slack_port, args.mail_port, args.gateway_mail_port, args.site_port
    )
    try:
        return asyncio.run(run_sandbox(args.config, sys.stdout, ports))
    except KeyboardInterrupt:
        return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Self-hosted customer-support gateway (Telegram, Slack, email).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="see it work: the gateway with built-in Telegram, Slack and mail sandboxes"
    )
    demo.add_argument(
        "--interactive",
        action="store_true",
        help="the same setup, and you type as the customers and the operators",
    )
    demo.set_defaults(func=cmd_demo)

    sandbox = sub.add_parser(
        "sandbox",
        help="Telegram, Slack and mail sandboxes on loopback, to try a config before real tokens",
    )
    _config_arguments(sandbox)
    sandbox.add_argument("--telegram-port", type=int, default=8081)
    sandbox.add_argument("--slack-port", type=int, default=8082)
    sandbox.add_argument("--mail-port", type=int, default=2526, help="customers' mail servers")
    sandbox.add_argument(
        "--gateway-mail-port", type=int, default=2525, help="the gateway's SMTP listener"
    )
    sandbox.add_argument(
        "--site-port", type=int, default=8083, help="a shop's page with the web chat widget"
    )
    sandbox.set_defaults(func=cmd_sandbox)

    run = sub.add_parser("run", help="start the gateway")
    _config_arguments(run)
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate a config file and exit")
    _config_arguments(check)
    check.set_defaults(func=cmd_check_config)

    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    _config_arguments(migrate)
    migrate.set_defaults(func=cmd_migrate)

    status = sub.add_parser("status", help="open conversations, queue and operators")
    _config_arguments(status)
    status.set_defaults(func=cmd_status)

    report = sub.add_parser(
        "report", help="response times, resolution, FAQ, SLA and CSAT, per operator/channel/day"
    )
    _config_arguments(report)
    report.add_argument("--since", help="first day, YYYY-MM-DD (default: 30 days ago)")
    report.add_argument("--until", help="last day included, YYYY-MM-DD (default: today)")
    report.add_argument("--by", choices=("operator", "channel", "day", "tag"), default="operator")
    report.add_argument("--tag", help="count only the conversations with this tag")
    report.add_argument(
        "--format",
        choices=("text", "csv", "json"),
        default="text",
        help="text for people, csv for spreadsheets, json for scripts (default: text)",
    )
    report.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    report.set_defaults(func=cmd_report)

    from gateway import cli_history, cli_privacy

    cli_history.add_commands(sub, _config_arguments)
    cli_privacy.add_commands(sub, _config_arguments)

    faq = sub.add_parser("faq", help="try the FAQ: ask it, or measure it on a set of questions")
    faq_sub = faq.add_subparsers(dest="faq_command", required=True, metavar="ACTION")
    ask = faq_sub.add_parser(
        "ask", help="what the FAQ does with a question, and why: words matched, scores, margin"
    )
    ask.add_argument("--config", default=DEFAULT_CONFIG)
    ask.add_argument("--limit", type=int, default=3)
    ask.add_argument("question")
    ask.set_defaults(func=cmd_faq_ask)
    ev = faq_sub.add_parser(
        "eval",
        help="precision and recall at several thresholds on a CSV of text,expected[,language,kind]",
    )
    ev.add_argument("--config", default=DEFAULT_CONFIG)
    ev.add_argument("--json", action="store_true", help="the whole result as JSON")
    ev.add_argument(
        "--precision",
        type=_share,
        metavar="P",
        help="also find the lowest threshold whose answers are at least P right (0-1)",
    )
    ev.add_argument(
        "--wrong", action="store_true", help="list only the questions answered wrongly or missed"
    )
    ev.add_argument("file")
    ev.set_defaults(func=cmd_faq_eval)
    return parser


def _config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE``, or the file named alone (``gateway run config.toml``): people
    type both, and both should work."""
    parser.add_argument("--config", help=f"the config file (default: {DEFAULT_CONFIG})")
    parser.add_argument("config_file", nargs="?", metavar="CONFIG", help="the same, unnamed")


def _resolve_config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    named, alone = getattr(args, "config", None), getattr(args, "config_file", None)
    if named and alone and named != alone:
        parser.error(f"two config files given ({alone} and --config {named}): name one")
    if hasattr(args, "config_file") or hasattr(args, "config"):
        args.config = named or alone or DEFAULT_CONFIG


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _resolve_config(parser, args)
    return int(args.func(args))


def console() -> NoReturn:
    """The ``gateway`` command: ``main``, then the process ends at once. What it made
    is frozen out of the collector's sight first: at exit Python collects once more,
    walking every object alive, and the imports alone made a few hundred thousand
    (SQLAlchemy's and pydantic's machinery). That walk was a quarter of a second of
    every command, for nothing."""
    code = main()
    gc.freeze()
    sys.exit(code)
