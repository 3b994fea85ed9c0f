"""The console for web tests: its database migrated to the newest revision, with
the signed-in users a test needs, one per role and scope; the console on a test
server with its signed-in clients; the forms' change pipeline (preview, Apply)
and the config files the forms edit."""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, Self

import pytest
import yaml
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from ivr.audit import AuditEntry
from ivr.config import HotlineConfig, load_config
from ivr.config.source import ConfigSource
from ivr.config_applier import ConfigApplier
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.prompts import PromptBuildReport
from ivr.web.app import create_app
from ivr.web.store import UserStore
from tests.rig.postgres import fresh_database_url


@dataclass(frozen=True)
class Account:
    """A console user: a supervisor or unit user is scoped by its hotline or
    unit, an agent is one of the config's agents."""

    username: str
    role: str
    hotline_id: str | None = None
    agent_id: str | None = None
    unit_code: str | None = None


@contextmanager
def console_sessions(database_url: str, *accounts: Account, password: str = "") -> Iterator[Any]:
    """A session factory on the migrated database at ``database_url`` whose
    ``accounts`` all sign in with ``password``; the engine is disposed after."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        factory = make_session_factory(engine)
        users = UserStore(factory)
        for account in accounts:
            users.add(
                account.username,
                password,
                account.role,
                hotline_id=account.hotline_id,
                agent_id=account.agent_id,
                unit_code=account.unit_code,
            )
        yield factory
    finally:
        engine.dispose()


# --- the console on a test server, its forms and the change pipeline ----------------------

APPLY = "/admin/changes/apply"  # where every change's preview posts its Apply form


def form_csrf(page: str) -> str:
    """The CSRF token a page's form carries (the login page's, before any session)."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def apply_form(page: str) -> dict[str, str]:
    """The hidden fields of a change preview's Apply form."""
    match = re.search(r'<form[^>]*action="' + re.escape(APPLY) + r'"[^>]*>(.*?)</form>', page, re.S)
    assert match, page
    fields = {}
    for tag in re.findall(r"<input[^>]*>", match.group(1)):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    return fields


def changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    """The lines a change took out of a text and the lines it put in, in order."""
    removed, added = [], []
    for line in difflib.ndiff(old.splitlines(), new.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def config_as_written(tmp_path: Path, example: Path, database: str) -> Path:
    """An example as it is (comments, order, flow style) in ``tmp_path/etc``,
    with its own database instead of ``database`` and the console's cookies
    over plain HTTP: what the forms edit line by line."""
    text = example.read_text(encoding="utf-8")
    text = text.replace(f"url: {database}", f"url: {fresh_database_url(tmp_path)}")
    text += "\nweb: {cookie_secure: false}\n"
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "hotline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def config_with_own_folders(tmp_path: Path, text: str) -> Path:
    """A config text rewritten into ``tmp_path`` with its own database,
    recordings and change history, and the console's cookies over plain HTTP
    (the YAML is dumped again: comments and flow style are not kept)."""
    data = yaml.safe_load(text)
    data["database"]["url"] = fresh_database_url(tmp_path)
    data["web"] = {"cookie_secure": False}
    data["paths"]["recordings"] = str(tmp_path / "recordings")
    data["paths"]["config_history"] = str(tmp_path / "history")
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


class ServedConsole:
    """A console app on an aiohttp test server and the signed-in clients a test
    opened. ``async with`` starts the server, and closes the clients and the
    server after."""

    def __init__(self, app: web.Application, password: str) -> None:
        self.app = app
        self.password = password  # the accounts' password unless one is given
        self.server = TestServer(app)
        self.clients: list[TestClient] = []

    async def __aenter__(self) -> Self:
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        await self.server.close()

    async def signed_in(self, username: str, password: str | None = None) -> tuple[TestClient, str]:
        """A new client (its own cookie jar: one user each) signed in through the
        login form: (the client, the CSRF token its forms and API calls take)."""
        client = TestClient(self.server)
        await client.start_server()
        self.clients.append(client)
        token = form_csrf(await (await client.get("/login")).text())
        answer = await client.post(
            "/login",
            data={
                "username": username,
                "password": self.password if password is None else password,
                "csrf_token": token,
                "next": "/",
            },
            allow_redirects=False,
        )
        assert answer.status == 302, await answer.text()
        me = await (await client.get("/api/v1/me")).json()
        return client, me["csrf_token"]


def _no_prompts(config: HotlineConfig) -> PromptBuildReport:
    # The forms' tests are about the config text; building prompts is not theirs.
    return PromptBuildReport()


class LiveConsole(ServedConsole):
    """The console over a config file that its changes rewrite and apply live
    (one config source, the change pipeline's applier; prompts not built)."""

    def __init__(self, path: Path, sessions: Any, password: str, **app_options: Any) -> None:
        self.path, self.sessions = path, sessions
        self.source = ConfigSource(load_config(path))
        self.applier = ConfigApplier(self.source, build_prompts=_no_prompts)
        app = create_app(
            self.source, sessions, secret=b"s" * 32, applier=self.applier, **app_options
        )
        super().__init__(app, password)

    @classmethod
    @asynccontextmanager
    async def running(cls, path: Path, *accounts: Account, password: str) -> AsyncIterator[Self]:
        """The console over ``path`` on a started server, its migrated database
        holding ``accounts`` (all signing in with ``password``); all closed after."""
        config = load_config(path)
        with console_sessions(config.database_url, *accounts, password=password) as sessions:
            async with cls(path, sessions, password) as console:
                yield console

    @property
    def config(self) -> HotlineConfig:
        """The running config: what the last applied change left."""
        return self.source.current

    def text(self) -> str:
        """The config file as it is on disk now."""
        return self.path.read_text(encoding="utf-8")

    def audit(self, third: Literal["target", "detail"] = "target") -> list[tuple[str, str, str]]:
        """The audit log, oldest first: (actor, action, its target or detail)."""
        column = AuditEntry.detail if third == "detail" else AuditEntry.target
        with self.sessions() as session:
            rows = session.execute(
                select(AuditEntry.actor, AuditEntry.action, column).order_by(AuditEntry.id)
            ).all()
        return [(actor, action, value or "") for actor, action, value in rows]


def audited(sessions: Any, action: str) -> list[tuple[str, str]]:
    """Who did ``action`` to what, by the audit log: (actor, target), oldest first."""
    with sessions() as session:
        return [
            (e.actor, e.target)
            for e in session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        ]


async def apply_preview(
    client: TestClient, page: str, reason: str, *, allow_redirects: bool = True
) -> ClientResponse:
    """Apply a change from its preview ``page``, giving ``reason``: Apply's answer."""
    form = apply_form(page)
    form["reason"] = reason
    return await client.post(APPLY, data=form, allow_redirects=allow_redirects)


async def preview_and_apply(
    client: TestClient,
    token: str,
    path: str,
    fields: Mapping[str, str] | Iterable[tuple[str, str]],
    reason: str,
    *,
    allow_redirects: bool = True,
) -> tuple[str, ClientResponse]:
    """Post a form (with the CSRF ``token``), which must answer with its
    preview, then apply that preview: (the preview page, Apply's answer)."""
    pairs = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
    preview = await client.post(path, data=[("csrf_token", token), *pairs])
    page = await preview.text()
    assert preview.status == 200, page
    return page, await apply_preview(client, page, reason, allow_redirects=allow_redirects)


def record_previews(monkeypatch: pytest.MonkeyPatch, form_module: ModuleType) -> dict[str, str]:
    """Stand in for a form module's ``preview_change``, to see the text a form
    builds before the pipeline checks it: what the form hands over (new_text,
    summary, back) lands in the dict returned, and the form answers "preview"."""
    seen: dict[str, str] = {}

    async def preview(
        request: web.Request, *, new_text: str, summary: str, back: str
    ) -> web.StreamResponse:
        seen.update(new_text=new_text, summary=summary, back=back)
        return web.Response(text="preview")

    monkeypatch.setattr(form_module, "preview_change", preview)
    return seen


COMBINED = Path(__file__).resolve().parents[2] / "examples" / "combined.yaml"


@asynccontextmanager
async def combined_console(tmp_path: Path, password: str) -> AsyncIterator[LiveConsole]:
    """combined.yaml as it is (comments, order, flow style), applied live, with an
    administrator (quantri) and Thanh Xuân's supervisor (gs-tx): the people
    forms' tests start from it."""
    path = config_as_written(tmp_path, COMBINED, "sqlite:///../var/combined.db")
    async with LiveConsole.running(
        path,
        Account("quantri", "admin"),
        Account("gs-tx", "supervisor", hotline_id="thanh-xuan"),
        password=password,
    ) as console:
        yield console
