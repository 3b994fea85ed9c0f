"""``hotline open311-keys``: the API keys of Open311 client apps (issue 14).

An administrator issues one key per app and hotline (``add`` prints it once;
only its hash is kept), lists them and revokes them. Each change is audited
with the operating-system user who ran the command.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Callable
from typing import Any

from ivr.config.schema import HotlineConfig

logger = logging.getLogger(__name__)


def add_open311_keys_parser(commands: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    keys = commands.add_parser("open311-keys", help="API keys of Open311 client apps")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    sub = actions.add_parser("add", help="issue a key to an app (printed once, never again)")
    sub.add_argument("--hotline", required=True, help="the hotline id (the Open311 jurisdiction)")
    sub.add_argument("--app", required=True, help="the app's name, as administrators know it")
    sub.add_argument("--contact", default="", help="who runs the app (a name, an address)")
    sub.set_defaults(handler=handler)
    sub = actions.add_parser("list", help="list the keys (never the keys themselves)")
    sub.add_argument("--hotline", default=None)
    sub.set_defaults(handler=handler)
    sub = actions.add_parser("revoke", help="refuse a key from its next request on")
    sub.add_argument("key_id", type=int, help="the key's number, as `list` shows it")
    sub.set_defaults(handler=handler)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "cli"


def run_open311_keys_command(config: HotlineConfig, args: argparse.Namespace) -> int:
    from ivr.db.engine import make_engine, make_session_factory
    from ivr.db.migrate import upgrade
    from ivr.web.api_keys import ApiKeyError, ApiKeyStore

    if getattr(args, "hotline", None) and config.hotline(args.hotline) is None:
        print(f"error: no hotline {args.hotline!r} in the config", file=sys.stderr)
        return 2
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    store = ApiKeyStore(make_session_factory(engine))
    try:
        if args.keys_command == "add":
            view, key = store.create(args.hotline, args.app, _actor(), contact=args.contact)
            print(f"key {view.id} for {view.app_name} on {view.hotline_id}:")
            print(key)
            print("keep it now: it is not stored and cannot be shown again", file=sys.stderr)
            return 0
        if args.keys_command == "revoke":
            view = store.revoke(args.key_id, _actor())
            print(f"key {view.id} ({view.app_name}, {view.hotline_id}) revoked")
            return 0
        for view in store.all(args.hotline):
            state = "active" if view.active else f"revoked {view.revoked_at:%Y-%m-%d}"
            print(
                f"{view.id}\t{view.hotline_id}\t{view.app_name}\t{view.key_prefix}…\t"
                f"{view.created_at:%Y-%m-%d}\t{view.created_by}\t{state}"
            )
        return 0
    except ApiKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
