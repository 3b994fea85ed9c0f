"""The gate between the config and Asterisk (issue 10, finding 2 and 4).

Every config string that reaches a rendered file or an AMI header is checked
for the syntax of where it lands; an error names file, line and field and
nothing is rendered. The console cannot move paths or the database, never sees
a secret, and what it saves keeps the secrets it did not see. Files holding
secrets are the service user's only; every phone authenticates.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr.asterisk.render import RenderOptions, render_all, render_pjsip, write_all
from ivr.cli import main as hotline
from ivr.config import ConfigError, load_config
from ivr.config.phone_secrets import generated_phone_secrets, phone_secret
from ivr.config.safe_text import UnsafeValue, check_host, check_name, check_secret
from ivr.config.secret_mask import MASK, mask_secrets, unmask_secrets
from ivr.config_applier import ConfigApplier
from tests.test_config_apply import no_prompts

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bac-tu-liem.yaml"
NOW = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
AMI_SECRET = "change-me-ami-secret"
RELOAD_SECRET = "change-me-reload-secret"


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


@pytest.fixture
def example_text(tmp_path: Path) -> str:
    """The example with its generated files kept under ``tmp_path``."""
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "routing_table: ../var/routing.json",
        f"routing_table: {tmp_path / 'routing.json'}\n"
        f"  config_history: {tmp_path / 'history'}\n"
        f"  phone_secrets: {tmp_path / 'phone-secrets.json'}",
    )
    text = text.replace("url: sqlite:///../var/hotline.db", f"url: sqlite:///{tmp_path}/h.db")
    return text.replace(
        "timezone: Asia/Ho_Chi_Minh\n",
        "timezone: Asia/Ho_Chi_Minh\n"
        f"web: {{cookie_secure: false, secret_file: {tmp_path / 'web-secret'}}}\n",
    )


# (what is replaced in the example, its replacement, the field named, what the
# line to report contains)
INJECTIONS = {
    "newline in the AGI host adds a dialplan line": (
        "agi: {host: 127.0.0.1, port: 4573}",
        'agi: {host: "127.0.0.1:4573\\n same => n,System(id)", port: 4573}',
        "asterisk.agi.host",
        "agi: {host:",
    ),
    "newline in the AMI secret adds a permit line": (
        f"secret: {AMI_SECRET},",
        f'secret: "{AMI_SECRET}\\npermit=0.0.0.0/0.0.0.0",',
        "asterisk.ami.secret",
        "secret:",
    ),
    "comma in an agent's name shifts the member fields": (
        '{id: dtv01, name: "Nguyễn Thị Hà", phone: dtv-01}',
        '{id: dtv01, name: "Nguyễn Thị Hà,1,PJSIP/evil", phone: dtv-01}',
        "agents[0].name",
        "id: dtv01,",
    ),
    "quote in a phone's name breaks the callerid": (
        '{id: dtv-01, name: "Bàn điện thoại viên 01"}',
        "{id: dtv-01, name: 'Bàn \"01\" <sip:evil>'}",
        "phones[30].name",
        "id: dtv-01,",
    ),
    "space in a trunk host": (
        "    host: 127.0.0.1\n",
        '    host: "127.0.0.1 evil"\n',
        "trunks[0].host",
        'host: "127.0.0.1 evil"',
    ),
    "a second contact in a phone's static contact": (
        '{id: pb-noi-vu, name: "Phòng Nội vụ"}',
        '{id: pb-noi-vu, name: "Phòng Nội vụ", contact: "sip:a@10.0.0.1,sip:b@10.6.6.6"}',
        "phones[1].contact",
        "id: pb-noi-vu,",
    ),
    "an ampersand in a dial prefix dials a second target": (
        "    port: 5070\n",
        '    port: 5070\n    dial_prefix: "9&PJSIP/evil"\n',
        "trunks[0].dial_prefix",
        "dial_prefix:",
    ),
    "a newline in a prompt name adds an AGI command": (
        '"8": prompt:out_of_scope',
        '"8": "prompt:x\\nEXEC System id"',
        "hotlines[0].menus.main.options.8",
        '"8": "prompt:',
    ),
    "a comma in a path shifts the AGI arguments": (
        "",  # the fixture's own routing_table line (see below)
        "routing_table: /tmp/a,b.json",
        "paths.routing_table",
        "routing_table:",
    ),
}


@pytest.mark.parametrize("case", list(INJECTIONS))
def test_an_injected_value_is_refused_with_file_line_field_and_nothing_rendered(
    case: str, tmp_path: Path, example_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new, field, line_text = INJECTIONS[case]
    if not old:
        text = re.sub(r"routing_table: \S+", new, example_text)
    else:
        assert old in example_text
        text = example_text.replace(old, new, 1)
    path = tmp_path / "hotline.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert str(problem).startswith(f"{path}:{_line_of(text, line_text)}: {field}: ")
    # The check-config command says the same; asterisk-config writes nothing.
    out = tmp_path / "rendered"
    with pytest.raises(SystemExit) as exited:
        hotline(["--config", str(path), "asterisk-config", "--out", str(out)])
    assert exited.value.code == 2
    assert not out.exists()
    assert f"{path}:{problem.line}: {field}:" in capsys.readouterr().err


def test_a_refused_secret_is_never_repeated_in_the_error(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        f"secret: {AMI_SECRET},", 'secret: "sh0rt;write=all",'
    )
    path = tmp_path / "hotline.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert problem.field == "asterisk.ami.secret"
    assert "sh0rt" not in str(caught.value) and "write=all" not in str(caught.value)


def test_gate_types_accept_real_values_and_refuse_delimiters() -> None:
    for host in ("127.0.0.1", "::1", "pbx-1.hanoi.gov.vn", "0.0.0.0"):
        assert check_host(host) == host
    for host in ("127.0.0.1\n", "a b", "-x.vn", "1.2.3.4.5", "a;b", "[::1]"):
        with pytest.raises(ValueError):
            check_host(host)
    assert check_name("Phòng Tài chính – Kế hoạch") == "Phòng Tài chính – Kế hoạch"
    for name in ("a,b", 'a"b', "a\tb", "a\x00b", "a${X}", "a;b", "a<b>", "a\u2028b"):
        with pytest.raises(ValueError):
            check_name(name)
    check_secret("Abc.~+/=@%!-123")
    for secret in ("with space", "semi;colon", "new\nline", "quote'"):
        with pytest.raises(ValueError):
            check_secret(secret)


def test_the_renderer_refuses_a_line_break_even_past_the_schema(tmp_path: Path) -> None:
    config = load_config(EXAMPLE)
    # model_copy does not validate: as if a value had bypassed the schema.
    agi = config.asterisk.agi.model_copy(update={"host": "127.0.0.1\n same => n,System(id)"})
    asterisk = config.asterisk.model_copy(update={"agi": agi})
    bypassed = config.model_copy(update={"asterisk": asterisk})
    secrets = {phone.id: "x" * 20 for phone in config.phones}
    options = RenderOptions(Path("/p"), Path("/p/moh"), Path("/r"), secrets)
    with pytest.raises(UnsafeValue):
        render_all(bypassed, options)
    with pytest.raises(UnsafeValue):
        write_all(bypassed, options, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- authenticated phones ---------------------------------------------------------------


def test_every_phone_authenticates_with_a_generated_secret_kept_0600(
    tmp_path: Path, example_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = example_text.replace(
        '{id: pb-noi-vu, name: "Phòng Nội vụ"}',
        '{id: pb-noi-vu, name: "Phòng Nội vụ", secret: own-secret-1234,'
        " contact: sip:noi-vu@10.0.0.7:5060}",
    )
    path = tmp_path / "hotline.yaml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    store = tmp_path / "phone-secrets.json"
    assert not store.exists()
    generated = generated_phone_secrets(config)
    assert store.stat().st_mode & 0o777 == 0o600
    assert set(generated) == {p.id for p in config.phones} - {"pb-noi-vu"}
    assert generated_phone_secrets(config) == generated  # stable: generated once
    assert json.loads(store.read_text(encoding="utf-8")) == generated
    pjsip = render_pjsip(config, generated)
    for phone in config.phones:
        secret = "own-secret-1234" if phone.id == "pb-noi-vu" else generated[phone.id]
        endpoint = pjsip.split(f"[{phone.id}]\ntype=endpoint\n", 1)[1].split("\n\n", 1)[0]
        assert f"auth={phone.id}-auth" in endpoint
        assert f"[{phone.id}-auth]\ntype=auth\nauth_type=userpass\nusername={phone.id}\n" \
               f"password={secret}\n" in pjsip  # fmt: skip
    # A request naming a phone in From is that phone (challenged) before any
    # address match to the trunk.
    assert "endpoint_identifier_order=username,ip\n" in pjsip
    # The administrator reads one secret once from the command line.
    assert hotline(["--config", str(path), "phones", "secret", "dtv-01"]) == 0
    assert capsys.readouterr().out.strip() == generated["dtv-01"]
    assert phone_secret(config, "pb-noi-vu") == "own-secret-1234"


def test_a_phone_without_any_secret_is_never_rendered_open() -> None:
    config = load_config(EXAMPLE)
    with pytest.raises(UnsafeValue, match="no SIP secret"):
        render_pjsip(config, {})


def test_a_phone_id_that_looks_like_a_number_is_refused(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("{id: pb-noi-vu,", "{id: '1001',")
    path = tmp_path / "hotline.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any(p.field == "phones[1].id" and "needs a letter" in p.message
               for p in caught.value.problems)  # fmt: skip


def test_rendered_files_with_secrets_are_0600(tmp_path: Path, example_text: str) -> None:
    path = tmp_path / "hotline.yaml"
    path.write_text(example_text, encoding="utf-8")
    out = tmp_path / "etc"
    assert hotline(["--config", str(path), "asterisk-config", "--out", str(out)]) == 0
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert modes["pjsip.conf"] == 0o600 and modes["manager.conf"] == 0o600
    assert modes["extensions.conf"] == 0o644
    assert AMI_SECRET in (out / "manager.conf").read_text(encoding="utf-8")


# --- the console's editor ------------------------------------------------------------


@pytest.fixture
def applier(tmp_path: Path, example_text: str) -> ConfigApplier:
    path = tmp_path / "hotline.yaml"
    path.write_text(example_text, encoding="utf-8")
    # Prompts are not what these tests apply (tests/test_prompts_on_apply.py is).
    return ConfigApplier(load_config(path), clock=lambda: NOW, build_prompts=no_prompts)


LOCKED_EDITS = {
    "paths.prompts": ("  prompts: ../prompts\n", "  prompts: /etc/cron.d\n", "prompts:"),
    "asterisk.config_dir": (
        "  agi: {host: 127.0.0.1, port: 4573}\n",
        "  agi: {host: 127.0.0.1, port: 4573}\n  config_dir: /tmp/hotline-evil-etc\n",
        "config_dir:",
    ),
    "sms.path": ("  path: ../var/sms-outbox.jsonl\n", "  path: /root/.bashrc\n", "path: /root"),
    "database.url": ("url: sqlite:///", "url: sqlite:////tmp/evil", "url:"),
    "web.secret_file": ("secret_file: ", "secret_file: /tmp/known-key", "web:"),
}  # fmt: skip


@pytest.mark.parametrize("field", list(LOCKED_EDITS))
async def test_the_editor_refuses_a_path_or_database_change(
    field: str, applier: ConfigApplier
) -> None:
    old, new, line_text = LOCKED_EDITS[field]
    original = applier.current_text()
    assert old in original
    edited = original.replace(old, new, 1)
    with pytest.raises(ConfigError) as caught:
        await applier.apply_text(edited)
    [problem] = caught.value.problems
    assert problem.file == applier.source
    assert problem.line == _line_of(edited, line_text)
    assert problem.field == field and "may not be changed from the console" in problem.message
    assert applier.current_text() == original
    assert not (applier.source.parent / "history").exists()
    assert not Path("/tmp/hotline-evil-etc").exists()


async def test_the_editor_shows_no_secret_and_keeps_the_stored_ones(
    applier: ConfigApplier,
) -> None:
    original = applier.current_text()
    shown = applier.masked_text()
    assert AMI_SECRET not in shown and RELOAD_SECRET not in shown
    assert shown.count(MASK) == 2
    assert len(shown.splitlines()) == len(original.splitlines())
    # The administrator changes a ward's chairman and leaves the masks alone.
    edited = shown.replace("chairman: tel:0900000103@pstn", "chairman: tel:0900000999@pstn")
    await applier.apply_text(edited)
    saved = applier.current_text()
    assert saved == original.replace("tel:0900000103@pstn", "tel:0900000999@pstn")
    assert applier.config.asterisk.ami.secret == AMI_SECRET
    assert applier.config.asterisk.ami.reload_secret == RELOAD_SECRET
    assert applier.source.stat().st_mode & 0o777 == 0o600
    # A newly typed secret replaces the stored one.
    retyped = applier.masked_text().replace(f'secret: "{MASK}",', "secret: a-new-ami-secret-42,", 1)
    await applier.apply_text(retyped)
    assert applier.config.asterisk.ami.secret == "a-new-ami-secret-42"
    assert applier.config.asterisk.ami.reload_secret == RELOAD_SECRET


def test_a_mask_follows_its_phone_not_its_position(tmp_path: Path) -> None:
    stored = "phones:\n  - {id: a, secret: secret-of-a-123}\n  - {id: b, secret: secret-of-b-456}\n"
    shown = mask_secrets(stored)
    assert "secret-of" not in shown
    moved = "phones:\n  - {id: new, secret: typed-new-secret}\n" + shown.split("\n", 1)[1]
    restored = unmask_secrets(moved, stored, tmp_path / "h.yaml")
    assert "{id: a, secret: secret-of-a-123}" in restored
    assert "{id: b, secret: secret-of-b-456}" in restored
    assert "{id: new, secret: typed-new-secret}" in restored
    # A mask on a phone that had no secret cannot be restored: one precise error.
    orphan = shown.replace("{id: b,", "{id: c,")
    with pytest.raises(ConfigError) as caught:
        unmask_secrets(orphan, stored, tmp_path / "h.yaml")
    [problem] = caught.value.problems
    assert (problem.line, problem.field) == (3, "phones[1].secret")


def test_the_database_password_is_masked_inside_its_url(tmp_path: Path) -> None:
    stored = "database: {url: 'postgresql+psycopg://hotline:pa55-w0rd@db/hotline'}\n"
    shown = mask_secrets(stored)
    assert "pa55-w0rd" not in shown and f"hotline:{MASK}@db/hotline" in shown
    assert unmask_secrets(shown, stored, tmp_path / "h.yaml") == stored


# --- the console's pages and API -----------------------------------------------------

ADMIN_PASSWORD = "mật-khẩu-quản-trị-đủ-dài"


async def test_console_page_and_api_never_show_a_secret_and_keep_them(
    tmp_path: Path, applier: ConfigApplier
) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from ivr.db.engine import make_engine, make_session_factory
    from ivr.db.migrate import upgrade
    from ivr.web.app import create_app
    from ivr.web.store import UserStore

    config = applier.config
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    UserStore(sessions).add("quantri", ADMIN_PASSWORD, "admin")
    app = create_app(config, sessions, secret=b"k" * 32, applier=applier)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        login = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', await login.text())
        assert token is not None
        signed_in = await client.post(
            "/login",
            data={"username": "quantri", "password": ADMIN_PASSWORD,
                  "csrf_token": token.group(1), "next": "/"},
            allow_redirects=False,
        )  # fmt: skip
        assert signed_in.status == 302, await signed_in.text()
        csrf = (await (await client.get("/api/v1/me")).json())["csrf_token"]
        page = await (await client.get("/admin/config")).text()
        shown = (await (await client.get("/api/v1/config")).json())["text"]
        for text in (page, shown):
            assert AMI_SECRET not in text and RELOAD_SECRET not in text
        assert shown == applier.masked_text() and MASK in shown
        # The administrator sends back the masked text with one change.
        edited = shown.replace("chairman: tel:0900000103@pstn", "chairman: tel:0900000998@pstn")
        answer = await client.post(
            "/api/v1/config", json={"text": edited}, headers={"X-CSRF-Token": csrf}
        )
        assert answer.status == 200, await answer.text()
        assert AMI_SECRET not in await answer.text()
        assert applier.config.asterisk.ami.secret == AMI_SECRET
        assert f"secret: {AMI_SECRET}," in applier.current_text()
        assert "tel:0900000998@pstn" in applier.current_text()
        # A path change from the console is refused, the file untouched.
        before = applier.current_text()
        moved = shown.replace("  prompts: ../prompts\n", "  prompts: /etc\n")
        refused = await client.post(
            "/api/v1/config", json={"text": moved}, headers={"X-CSRF-Token": csrf}
        )
        assert refused.status == 422
        [problem] = (await refused.json())["problems"]
        assert problem["field"] == "paths.prompts" and problem["line"] == _line_of(
            moved, "prompts: /etc"
        )
        assert applier.current_text() == before
    finally:
        await client.close()
        engine.dispose()
