"""``hotline users``: the console's users from the command line (the first
administrator is created here; the others from the admin page or here)."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Callable
from typing import Any

from ivr.config.schema import HotlineConfig
from ivr.web.models import ROLES

logger = logging.getLogger(__name__)


def add_users_parser(commands: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    users = commands.add_parser("users", help="web console users (admin, supervisor, agent, unit)")
    actions = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    sub = actions.add_parser("add", help="add a user; the password is asked for (or stdin)")
    sub.add_argument("username")
    sub.add_argument("--role", choices=ROLES, required=True)
    sub.add_argument("--agent", default=None, help="the agent id from the config (agents)")
    sub.add_argument("--name", default="", help="display name")
    sub.add_argument(
        "--hotline", default=None, help="a supervisor of one hotline: its id from the config"
    )
    sub.add_argument(
        "--unit", default=None, help="a unit user: its unit's code (units: in the config)"
    )
    sub.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    sub.set_defaults(handler=handler)
    sub = actions.add_parser("passwd", help="set a user's password (ends its sessions)")
    sub.add_argument("username")
    sub.add_argument("--password-stdin", action="store_true")
    sub.set_defaults(handler=handler)
    sub = actions.add_parser("list", help="list users")
    sub.set_defaults(handler=handler)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("the passwords differ")
    return first


def run_users_command(config: HotlineConfig, args: argparse.Namespace) -> int:
    from ivr.db.engine import make_engine, make_session_factory
    from ivr.db.migrate import upgrade
    from ivr.web.session_store import SessionStore
    from ivr.web.store import UserError, UserStore

    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    factory = make_session_factory(engine)
    users = UserStore(factory)
    try:
        if args.users_command == "list":
            for user in users.all():
                state = "active" if user.active else "disabled"
                print(
                    f"{user.username}\t{user.role}\t{user.agent_id or '-'}\t"
                    f"{user.hotline_id or '-'}\t{state}"
                )
            return 0
        if args.users_command == "passwd":
            users.set_password(args.username, _password(args))
            # The epoch bump already refuses old sessions; their rows go too.
            user_id = next(u.id for u in users.all() if u.username == args.username)
            ended = SessionStore(factory).close_all(user_id)
            print(f"password of {args.username} changed; {ended} session(s) ended")
            return 0
        if args.agent and args.agent not in {a.id for a in config.agents}:
            print(f"error: no agent {args.agent!r} in the config", file=sys.stderr)
            return 2
        if args.hotline and config.hotline(args.hotline) is None:
            print(f"error: no hotline {args.hotline!r} in the config", file=sys.stderr)
            return 2
        if args.unit and config.unit(args.unit) is None:
            print(f"error: no unit {args.unit!r} in the config", file=sys.stderr)
            return 2
        user = users.add(
            args.username, _password(args), args.role, agent_id=args.agent,
            display_name=args.name, hotline_id=args.hotline, unit_code=args.unit,
        )  # fmt: skip
        print(f"added {user.username} ({user.role})")
        return 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
