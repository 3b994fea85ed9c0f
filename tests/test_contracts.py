"""The contracts between the dialplan, the AGI server, the fallback script and
the statistics: one table each, and both ends kept to it."""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ivr.agi.server import HotlineAgi
from ivr.asterisk.render import agi_call, render_extensions
from ivr.call_log import CallEnd
from ivr.cases import models as case_models
from ivr.config import HotlineConfig, load_config
from ivr.contracts import agi_scripts as scripts
from ivr.contracts import channel_variables as v
from ivr.contracts.statuses import OPEN_CASE_STATUSES, CaseStatus, RouteKind
from ivr.flow.call_flow import STATUS_PROMPTS
from ivr.routing_table import build_routing_table
from queue_manager.model import ChangeKind
from queue_manager.stats import HANDLERS, IGNORED, StatsRecorder

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "bac-tu-liem.yaml"
FALLBACK = ROOT / "agi_scripts" / "hotline_fallback.py"

# What each named argument must carry, as the dialplan spells it: the test of
# "names", not only counts (a swapped pair of arguments fails here).
EXPECTED_EXPRESSION = {
    "uniqueid": "${UNIQUEID}",
    "dialed": f"${{{v.DIALED}}}",
    "linkedid": "${CHANNEL(linkedid)}",
    "route": f"${{{v.ROUTE}}}",
    "answered": f"${{CUT({v.TARGET},{v.FIELD_SEPARATOR},3)}}",
    "dial_status": "${DIALSTATUS}",
    "answer_epoch": f"${{{v.ANSWER_EPOCH}}}",
    "queue_member": "${MEMBERINTERFACE}",
    "rec_base": f"${{{v.REC_BASE}}}",
    "hotline": f"${{{v.HOTLINE}}}",
    "queue": f"${{{v.QUEUE}}}",
    "joined": f"${{{v.QUEUE_JOINED}}}",
    "callback_id": f"${{{v.CALLBACK_ID}}}",
}


@pytest.fixture(scope="module")
def config() -> HotlineConfig:
    return load_config(EXAMPLE)


def split_arguments(text: str) -> list[str]:
    """Split a dialplan application's arguments on the commas at the top level
    (``${CUT(HL_TARGET,|,3)}`` is one argument)."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "({":
            depth += 1
        elif char in ")}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def fastagi_calls(dialplan: str) -> list[tuple[str, list[str]]]:
    """Every ``AGI(${HL_AGI}/<script>,<args>)`` in the dialplan: script, arguments."""
    prefix = f"AGI(${{{v.AGI_URL}}}/"
    found = []
    for line in dialplan.splitlines():
        if prefix not in line:
            continue
        inside = line.split(prefix, 1)[1]
        assert inside.endswith(")"), line
        name, *arguments = split_arguments(inside[:-1])
        found.append((name, arguments))
    return found


def test_every_agi_line_in_the_dialplan_follows_the_script_table(config: HotlineConfig) -> None:
    calls = fastagi_calls(render_extensions(config))
    assert {name for name, _ in calls} == set(scripts.BY_NAME)  # every script is called
    for name, arguments in calls:
        script = scripts.BY_NAME[name]
        assert len(arguments) == len(script.arguments), name
        expected = [EXPECTED_EXPRESSION[argument] for argument in script.arguments]
        assert arguments == expected, name


def test_the_server_reads_each_argument_under_the_name_the_dialplan_passed_it(
    config: HotlineConfig,
) -> None:
    """As Asterisk would: the n-th rendered argument arrives as agi_arg_n."""
    for name, arguments in fastagi_calls(render_extensions(config)):
        script = scripts.BY_NAME[name]
        env = {f"agi_arg_{i}": text for i, text in enumerate(arguments, start=1)}
        parsed = script.parse(lambda i, env=env: env.get(f"agi_arg_{i}", ""))  # type: ignore[misc]
        for argument in script.arguments:
            assert getattr(parsed, argument) == EXPECTED_EXPRESSION[argument], (name, argument)


def test_an_agi_line_with_a_missing_or_unknown_argument_is_refused() -> None:
    with pytest.raises(ValueError, match="missing \\['hotline'\\]"):
        agi_call(scripts.SURVEY, uniqueid="${UNIQUEID}")
    with pytest.raises(ValueError, match="unknown \\['rating'\\]"):
        agi_call(scripts.SURVEY, uniqueid="${UNIQUEID}", hotline="x", rating="5")


def test_every_script_of_the_table_has_a_handler(config: HotlineConfig) -> None:
    agi = HotlineAgi(config, call_log=None)  # type: ignore[arg-type]
    try:
        assert set(agi.handlers()) == set(scripts.BY_NAME)
    finally:
        asyncio.run(agi.close())


class FakeRequest:
    def __init__(self, script: scripts.AgiScript[Any], **arguments: str) -> None:
        self.headers = {"agi_network_script": script.name, "agi_uniqueid": "env-id"}
        for index, name in enumerate(script.arguments, start=1):
            self.headers[f"agi_arg_{index}"] = arguments.get(name, "")

    async def send_command(self, command: str) -> dict[str, Any]:
        raise AssertionError(f"the hangup handler sent {command!r}")


class EndedCalls:
    def __init__(self) -> None:
        self.ended: list[CallEnd] = []

    def call_ended(self, end: CallEnd) -> None:
        self.ended.append(end)


async def test_the_hangup_handler_reads_its_seven_arguments_by_name(
    config: HotlineConfig,
) -> None:
    calls = EndedCalls()
    agi = HotlineAgi(config, calls)  # type: ignore[arg-type]
    request = FakeRequest(
        scripts.CALL_ENDED,
        uniqueid="1700000000.7",
        route="dial",
        answered="chairman:dong-ngac",
        dial_status="ANSWER",
        answer_epoch="1700000012.250",
        queue_member="PJSIP/dtv-01",
        rec_base="/r/2026/05/01/1700000000.7",
    )
    try:
        await agi.ended(request)
    finally:
        await agi.close()
    (end,) = calls.ended
    assert (end.uniqueid, end.route, end.dial_status) == ("1700000000.7", "dial", "ANSWER")
    assert end.answered_by == "chairman:dong-ngac"
    assert end.answered_epoch == 1700000012.25
    assert end.queue_member == "PJSIP/dtv-01"


# --- channel variables ------------------------------------------------------------


def _product_files() -> list[Path]:
    files = [*(ROOT / "ivr").rglob("*.py"), *(ROOT / "queue_manager").rglob("*.py")]
    return [f for f in files if "contracts" not in f.parts and "migrations" not in f.parts]


def _string_constants(tree: ast.AST) -> list[ast.Constant]:
    """String literals (f-string parts included), docstrings left out."""
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_no_channel_variable_is_spelled_outside_the_contract() -> None:
    spelled = [
        f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}"
        for path in _product_files()
        for node in _string_constants(ast.parse(path.read_text(encoding="utf-8")))
        if re.search(r"\bHL_[A-Z]", str(node.value))
    ]
    assert spelled == []


def _fallback_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hotline_fallback", FALLBACK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fallback_script_spells_the_contract_names() -> None:
    fallback = _fallback_module()
    assert (fallback.ROUTE, fallback.QUEUE) == (v.ROUTE, v.QUEUE)
    assert (fallback.TARGETS, fallback.FINAL) == (v.TARGETS, v.FINAL)
    assert (fallback.TARGET_SEPARATOR, fallback.FIELD_SEPARATOR) == (
        v.TARGET_SEPARATOR,
        v.FIELD_SEPARATOR,
    )
    assert (fallback.DIAL_ROUTE, fallback.QUEUE_ROUTE) == (RouteKind.DIAL, RouteKind.QUEUE)
    # Every HL_ name it spells is one of the contract's.
    contract = {value for name, value in vars(v).items() if name.isupper()}
    source = FALLBACK.read_text(encoding="utf-8")
    assert set(re.findall(r"HL_[A-Z_]+", source)) <= contract


def test_the_fallback_script_stays_standalone() -> None:
    """It must route calls when the project's own code cannot start."""
    tree = ast.parse(FALLBACK.read_text(encoding="utf-8"))
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    standard = {"__future__", "contextlib", "json", "os", "sys", "time", "typing"}
    assert imported <= standard | {"asterisk"}


class RecordingAgi:
    def __init__(self, keys: str) -> None:
        self.keys = keys
        self.variables: dict[str, str] = {}

    def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str:
        return self.keys

    def set_variable(self, name: str, value: str) -> None:
        self.variables[name] = value


def test_the_fallback_script_packs_targets_as_the_dialplan_unpacks_them(
    config: HotlineConfig,
) -> None:
    hotline = build_routing_table(config)["hotlines"]["bac-tu-liem"]
    agi = RecordingAgi("03")
    assert _fallback_module().route_ward(agi, hotline)
    shortcut = hotline["area_menus"][0]["shortcuts"]["03"]
    packed = agi.variables[v.TARGETS].split(v.TARGET_SEPARATOR)
    assert [p.split(v.FIELD_SEPARATOR) for p in packed] == [
        [t["dial"], str(t["ring"]), t["label"]] for t in shortcut["targets"]
    ]
    assert agi.variables[v.ROUTE] == RouteKind.DIAL
    assert agi.variables[v.FINAL] == RouteKind.QUEUE


# --- statuses -----------------------------------------------------------------------


def test_case_statuses_are_defined_once() -> None:
    assert tuple(CaseStatus) == case_models.STATUSES
    assert OPEN_CASE_STATUSES == case_models.OPEN_STATUSES
    # Every status has its sentence for the caller who asks where a case stands.
    assert set(STATUS_PROMPTS) == set(CaseStatus)


def test_status_members_are_the_stored_strings() -> None:
    """The database and the templates hold the plain words."""
    assert [str(s) for s in CaseStatus] == [
        "received", "classified", "assigned", "in_progress", "answered", "closed", "rejected"
    ]  # fmt: skip
    assert f"{CaseStatus.IN_PROGRESS}" == "in_progress"


# --- statistics dispatch ----------------------------------------------------------


def test_every_change_kind_is_written_or_named_as_ignored() -> None:
    assert set(HANDLERS).isdisjoint(IGNORED)
    assert set(HANDLERS) | IGNORED == set(ChangeKind)
    assert all(isinstance(kind, ChangeKind) for kind in [*HANDLERS, *IGNORED])


def test_every_statistics_handler_is_in_the_table_under_its_own_kind() -> None:
    """A handler whose name matches no kind (a typo) would never run."""
    methods = {
        name: getattr(StatsRecorder, name) for name in dir(StatsRecorder) if name.startswith("_on_")
    }
    assert set(methods.values()) == set(HANDLERS.values())
    for kind, handler in HANDLERS.items():
        assert handler.__name__ == f"_on_{kind}", kind


def test_the_model_emits_only_change_kinds() -> None:
    """Every ``_emit`` in the live model names a ChangeKind member, never a string."""
    source = (ROOT / "queue_manager" / "model.py").read_text(encoding="utf-8")
    emitted = [
        node.args[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "_emit"
    ]
    assert emitted
    for kind in emitted:
        results = [kind.body, kind.orelse] if isinstance(kind, ast.IfExp) else [kind]
        for result in results:
            assert isinstance(result, ast.Attribute), ast.unparse(kind)
            assert isinstance(result.value, ast.Name) and result.value.id == "ChangeKind"
            assert result.attr in ChangeKind.__members__, ast.unparse(kind)
