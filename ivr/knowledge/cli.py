"""``hotline kb import FILE.csv [--hotline ID]``: load articles from a CSV file
(all rows or none; see :mod:`ivr.knowledge.csv_import` for the columns)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ivr.config.schema import HotlineConfig

logger = logging.getLogger(__name__)


def add_kb_parser(commands: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    kb = commands.add_parser("kb", help="the knowledge base of administrative procedures")
    actions = kb.add_subparsers(dest="kb_command", required=True, metavar="ACTION")
    sub = actions.add_parser(
        "import",
        help="import articles from a UTF-8 CSV file with a header; a bad row imports nothing",
    )
    sub.add_argument(
        "csv_file", type=Path, metavar="FILE.csv", help="the CSV file (examples/knowledge-base.csv)"
    )
    sub.add_argument(
        "--hotline",
        default=None,
        help="owner of rows whose hotline column is empty (default: shared by every hotline)",
    )
    sub.set_defaults(handler=handler)


def run_kb_command(config: HotlineConfig, args: argparse.Namespace) -> int:
    from ivr.db.engine import make_engine, make_session_factory
    from ivr.db.migrate import upgrade
    from ivr.knowledge.csv_import import CsvImportError, decode, parse_articles
    from ivr.knowledge.service import KnowledgeBase, KnowledgeError, KnowledgeScope

    path: Path = args.csv_file
    if args.hotline and config.hotline(args.hotline) is None:
        print(f"error: no hotline {args.hotline!r} in the config", file=sys.stderr)
        return 2
    try:
        drafts = parse_articles(
            decode(path.read_bytes(), str(path)),
            source=str(path),
            default_hotline=args.hotline,
            hotlines={h.id for h in config.hotlines},
            topics={t.code for t in config.cases.topics},
        )
    except OSError as exc:
        print(f"error: {path}: {exc.strerror}", file=sys.stderr)
        return 2
    except CsvImportError as exc:
        print(f"error: {exc.source}: nothing imported:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {exc.source}:{problem}", file=sys.stderr)
        return 2
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    try:
        knowledge = KnowledgeBase(make_session_factory(engine))
        # The command line is the operator's: every hotline's articles.
        scope = KnowledgeScope(hotline_id=None, all_hotlines=True, editor=True)
        created, updated = knowledge.import_drafts(
            drafts, actor="cli", scope=scope, source=str(path)
        )
    except KnowledgeError as exc:
        print(f"error: {path}: nothing imported: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"{path}: {created} articles created, {updated} updated")
    return 0
