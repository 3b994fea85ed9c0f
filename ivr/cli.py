"""The ``hotline`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from ivr.config import ConfigError, HotlineConfig, load_config

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "examples" / "bac-tu-liem.yaml"


def _load(args: argparse.Namespace) -> HotlineConfig:
    try:
        return load_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args)
    from ivr.config.schema import iter_areas

    print(
        f"{args.config}: OK — {len(config.hotlines)} hotline(s), "
        f"{len(iter_areas(config.areas))} areas, {len(config.departments)} departments, "
        f"{len(config.queues)} queues, {len(config.agents)} agents, "
        f"{len(config.roster.shifts)} shifts, {len(config.holidays)} holidays"
        + (f" (+ {config.holidays_from}'s computed)" if config.holidays_from else "")
    )
    # Warnings do not fail the check: the config still works as written.
    from ivr.config.area_import import official_code_warnings

    for warning in official_code_warnings(config, args.config):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def cmd_areas_import(args: argparse.Namespace) -> int:
    """Add a province's official units to the area tree, or bring them up to
    date; the file is changed only when the result passes check-config."""
    from datetime import UTC, datetime

    from ivr.config.area_import import AreaImportError, import_areas_text
    from ivr.config.edit import check_config_text, save_config_text

    config = _load(args)
    path: Path = args.config
    text = path.read_text(encoding="utf-8")
    try:
        result = import_areas_text(text, args.province)
    except AreaImportError as exc:
        print(f"error: {exc}; {path} is unchanged", file=sys.stderr)
        return 2
    for label, lines in (
        ("added", result.added),
        ("updated", result.updated),
        ("vanished", result.vanished),
    ):
        for line in lines:
            print(f"  {label}: {line}")
    print(f"{path}: {result.summary()}")
    if result.text == text:
        print(f"{path}: nothing to change")
        return 0
    try:
        check_config_text(path, result.text, config)
    except ConfigError as exc:
        print(
            f"error: {path} is unchanged; with the imported units it would not load:",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    history = config.resolve_path(config.paths.config_history)
    backup = save_config_text(path, result.text, history, datetime.now(UTC))
    if backup is not None:
        print(f"the previous version is kept as {backup}")
    print("a running `hotline serve` takes the change on SIGHUP")
    return 0


def cmd_asterisk_config(args: argparse.Namespace) -> int:
    from ivr.asterisk.render import RenderOptions, write_all, write_node
    from ivr.routing_table import write_routing_table

    config = _load(args)
    options = RenderOptions.from_config(config)
    if args.node is not None:
        try:
            written = write_node(config, options, args.node, Path(args.out))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        written = write_all(config, options, Path(args.out))
    table = write_routing_table(config)
    for path in [*written, table]:
        print(path)
    return 0


def cmd_kamailio_config(args: argparse.Namespace) -> int:
    from ivr.asterisk.kamailio import write_kamailio
    from ivr.config.phone_secrets import generated_phone_secrets

    config = _load(args)
    if not config.cluster.nodes:
        print("error: cluster.nodes is empty: one node needs no proxy", file=sys.stderr)
        return 2
    try:
        written = write_kamailio(config, generated_phone_secrets(config), Path(args.out))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


def cmd_asterisk_install(args: argparse.Namespace) -> int:
    from ivr.asterisk.instance import PROVISION_SCRIPT

    return subprocess.call(["bash", str(PROVISION_SCRIPT)])


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from ivr.db.migrate import upgrade

    config = _load(args)
    upgrade(config.database_url)
    print(f"database at {config.database_url} is up to date")
    return 0


def cmd_prompts_build(args: argparse.Namespace) -> int:
    from ivr.prompt_setup import build_hotline_prompts, prompt_warnings
    from ivr.prompts import PromptBuildReport

    config = _load(args)
    # The function `hotline serve` runs at its start and on every config applied;
    # with a report, every prompt that can be built is, and each failure is listed.
    report = PromptBuildReport()
    for path in build_hotline_prompts(config, force=args.force, report=report):
        logger.debug("prompt %s", path)
    print(f"{len(report.built)} prompts built in {config.resolve_path(config.paths.prompts)}")
    for warning in prompt_warnings(config, report):
        print(warning, file=sys.stderr)
    return 1 if report.failed else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ivr.service import serve

    config = _load(args)
    stop = asyncio.Event()
    hurry = asyncio.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()

        # SIGTERM (systemd, podman stop) and SIGINT: stop taking calls, let the
        # calls up end (their records close), write the queued records, exit.
        # A second one stops waiting for the calls up (the records are still written).
        def on_stop_signal() -> None:
            (hurry if stop.is_set() else stop).set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_stop_signal)
        await serve(
            config, stop, only=args.only, drain_seconds=args.drain_seconds, hurry=hurry,
            monitor_port=args.monitor_port,
        )  # fmt: skip

    asyncio.run(main())
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    import threading

    from ivr.db.migrate import upgrade
    from ivr.transcription.worker import run_worker

    config = _load(args)
    upgrade(config.database_url)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run_worker(config, stop, name=args.name)
    return 0


def cmd_calls(args: argparse.Namespace) -> int:
    from ivr.reports.call_listing import print_recent_calls

    config = _load(args)
    print_recent_calls(config, limit=args.limit)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ivr.demo import run_demo

    config = _load(args)
    return asyncio.run(run_demo(config, keep_running=args.keep_running))


def cmd_phone_secret(args: argparse.Namespace) -> int:
    """Print one phone's SIP secret for the administrator to set in the phone
    (generated and stored 0600 when the config gives none); never logged."""
    from ivr.config.phone_secrets import phone_secret

    config = _load(args)
    try:
        secret = phone_secret(config, args.phone_id)
    except KeyError:
        print(f"error: no phone {args.phone_id!r} in {args.config}", file=sys.stderr)
        return 2
    print(secret)
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    from ivr.web.cli import run_users_command

    return run_users_command(_load(args), args)


def cmd_open311_keys(args: argparse.Namespace) -> int:
    from ivr.web.open311_cli import run_open311_keys_command

    return run_open311_keys_command(_load(args), args)


def cmd_kb(args: argparse.Namespace) -> int:
    from ivr.knowledge.cli import run_kb_command

    return run_kb_command(_load(args), args)


def cmd_retention(args: argparse.Namespace) -> int:
    from ivr.privacy.cli import run_retention_command

    return run_retention_command(_load(args), args)


def _add_config_file_argument(sub: argparse.ArgumentParser) -> None:
    # `hotline check-config FILE` is how a newcomer types it; the global --config stays.
    sub.add_argument(
        "config_file",
        nargs="?",
        type=Path,
        default=None,
        metavar="FILE",
        help="the config file (overrides $HOTLINE_CONFIG; same as --config)",
    )


def _resolve_config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Set ``args.config`` from FILE, --config, $HOTLINE_CONFIG or the example, in that order.

    Two different files named at once is refused rather than one silently winning.
    """
    positional: Path | None = getattr(args, "config_file", None)
    if (
        positional is not None
        and args.config is not None
        and positional.resolve() != args.config.resolve()
    ):
        parser.error(
            f"two config files given: --config {args.config} and FILE {positional}; name one"
        )
    args.config = (
        positional or args.config or Path(os.environ.get("HOTLINE_CONFIG", DEFAULT_CONFIG))
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline",
        description="IVR and call-center engine for citizen hotlines, on Asterisk.",
    )
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        # None, not the default path, so that main() can tell "given" from "defaulted"
        # when a command also names the file positionally.
        default=None,
        help="the config file (default: $HOTLINE_CONFIG or examples/bac-tu-liem.yaml)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub = commands.add_parser(
        "check-config",
        help="validate the config file; every error names file, line and field",
    )
    _add_config_file_argument(sub)
    sub.set_defaults(handler=cmd_check_config)

    areas = commands.add_parser("areas", help="administrative units (the area tree)")
    area_commands = areas.add_subparsers(dest="areas_command", required=True, metavar="ACTION")
    sub = area_commands.add_parser(
        "import",
        help="add a province's wards and communes from the vietnam-provinces package, "
        "or bring them up to date (chairmen, fallbacks and shortcuts kept)",
    )
    sub.add_argument(
        "--province", required=True, metavar="CODE", help="the official province code (01: Hà Nội)"
    )
    _add_config_file_argument(sub)
    sub.set_defaults(handler=cmd_areas_import)

    sub = commands.add_parser(
        "asterisk-config",
        help="render pjsip, extensions, queues, manager, musiconhold and rtp .conf files",
    )
    _add_config_file_argument(sub)
    sub.add_argument("--out", required=True, help="folder to write the files into")
    sub.add_argument("--node", metavar="ID", help="render the files of this node of cluster.nodes")
    sub.set_defaults(handler=cmd_asterisk_config)

    sub = commands.add_parser(
        "kamailio-config",
        help="render the SIP proxy's kamailio.cfg (0600) and its dispatcher list (cluster.nodes)",
    )
    _add_config_file_argument(sub)
    sub.add_argument("--out", required=True, help="the kamailio.cfg to write")
    sub.set_defaults(handler=cmd_kamailio_config)

    sub = commands.add_parser(
        "asterisk-install",
        help="provision Asterisk: the system one if >= 20, else build 22 into a cache",
    )
    sub.set_defaults(handler=cmd_asterisk_install)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    sub = db_commands.add_parser("upgrade", help="create or migrate the schema (Alembic)")
    sub.set_defaults(handler=cmd_db_upgrade)

    prompts = commands.add_parser("prompts", help="voice prompts")
    prompt_commands = prompts.add_subparsers(dest="prompts_command", required=True)
    sub = prompt_commands.add_parser(
        "build", help="synthesize the prompt catalog (espeak-ng) into 8 kHz WAV files"
    )
    sub.add_argument("--force", action="store_true", help="rebuild unchanged prompts too")
    sub.set_defaults(handler=cmd_prompts_build)

    sub = commands.add_parser(
        "serve", help="run the FastAGI server (and, as they arrive, queue manager and web)"
    )
    sub.add_argument(
        "--only", choices=["agi", "ami", "web"], default=None, help="run one part only"
    )
    sub.add_argument(
        "--drain-seconds",
        type=float,
        default=30.0,
        help="on SIGTERM, how long calls up may still end and close their records (default 30)",
    )
    sub.add_argument(
        "--monitor-port",
        type=int,
        default=None,
        help="with --only agi or ami: serve /metrics and /healthz on web.bind at this port "
        "(the console serves them otherwise; docs/metrics.md)",
    )
    sub.set_defaults(handler=cmd_serve)

    sub = commands.add_parser(
        "worker", help="run one transcription worker process (vosk) until SIGTERM"
    )
    sub.add_argument("--name", default=None, help="worker name in the job table")
    sub.set_defaults(handler=cmd_worker)

    phones = commands.add_parser("phones", help="SIP phones")
    phone_commands = phones.add_subparsers(dest="phones_command", required=True)
    sub = phone_commands.add_parser(
        "secret", help="print a phone's SIP secret (generated once if the config has none)"
    )
    sub.add_argument("phone_id", help="the phone's id in the config (e.g. dtv-01)")
    sub.set_defaults(handler=cmd_phone_secret)

    from ivr.web.cli import add_users_parser

    add_users_parser(commands, cmd_users)

    from ivr.web.open311_cli import add_open311_keys_parser

    add_open311_keys_parser(commands, cmd_open311_keys)

    from ivr.knowledge.cli import add_kb_parser

    add_kb_parser(commands, cmd_kb)

    from ivr.privacy.cli import add_retention_parser

    add_retention_parser(commands, cmd_retention)

    sub = commands.add_parser("calls", help="print the most recent call records")
    sub.add_argument("--limit", type=int, default=10)
    sub.set_defaults(handler=cmd_calls)

    sub = commands.add_parser(
        "demo",
        help="start a private Asterisk and the server, place a call to a ward chairman, "
        "and show the call record",
    )
    sub.add_argument(
        "--keep-running", action="store_true", help="keep the stack up after the demo call"
    )
    sub.set_defaults(handler=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _resolve_config(parser, args)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
