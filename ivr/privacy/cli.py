"""``hotline retention run [--dry-run]``: apply the retention limits now and
print what was done per kind (for cron, or to check the limits before use)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

from ivr.config.retention import effective_audio_days
from ivr.config.schema import HotlineConfig

logger = logging.getLogger(__name__)


def add_retention_parser(commands: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    retention = commands.add_parser(
        "retention", help="delete or anonymise personal data older than its limit"
    )
    actions = retention.add_subparsers(dest="retention_command", required=True, metavar="ACTION")
    sub = actions.add_parser("run", help="run the retention job once and print counts per kind")
    sub.add_argument(
        "--dry-run", action="store_true", help="count what would be done; change nothing"
    )
    sub.set_defaults(handler=handler)


def run_retention_command(config: HotlineConfig, args: argparse.Namespace) -> int:
    from ivr.db.engine import make_engine, make_session_factory
    from ivr.db.migrate import upgrade
    from ivr.privacy.schedule import run_and_audit

    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    try:
        sessions = make_session_factory(engine)
        report = run_and_audit(sessions, config, "cli", dry_run=args.dry_run)
    finally:
        engine.dispose()
    r = config.retention
    limits = {
        "audio": effective_audio_days(config),
        "transcripts": r.transcript_days,
        "numbers": r.caller_number_days,
        "case_text": r.case_text_days,
    }
    print("dry run: nothing changed" if args.dry_run else "retention run done")
    print("limits (days, 0 or none = keep): "
          + ", ".join(f"{k}={v or 'keep'}" for k, v in limits.items()))  # fmt: skip
    for kind, count in report.counts.items():
        print(f"  {kind:<22} {count}")
    print(f"  {'audio awaiting transcript':<22} {report.audio_awaiting_transcript}")
    print(f"  {'cases under legal hold':<22} {report.held_cases}")
    for error in report.errors:
        print(f"error: {error}")
    return 1 if report.errors else 0
