"""The rendered Asterisk configuration, read back as Asterisk would group it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.asterisk.render import RenderOptions, render_all, render_queues
from ivr.config import HotlineConfig, load_config
from ivr.routing_table import build_routing_table

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bac-tu-liem.yaml"


@pytest.fixture(scope="module")
def config() -> HotlineConfig:
    return load_config(EXAMPLE)


@pytest.fixture(scope="module")
def files(config: HotlineConfig) -> dict[str, str]:
    secrets = {phone.id: f"secret-of-{phone.id}" for phone in config.phones}
    return render_all(config, RenderOptions(Path("/p"), Path("/p/moh"), Path("/r"), secrets))


def sections(text: str) -> dict[str, list[str]]:
    """Context (or section) name → its lines, in the order Asterisk reads them."""
    found: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        header = re.fullmatch(r"\[([^\]]+)\].*", line.strip())
        if header:
            current = header.group(1)
            found.setdefault(current, [])
        elif line.strip() and not line.startswith(";"):
            found.setdefault(current, []).append(line)
    return found


def extensions(lines: list[str]) -> set[str]:
    return {m.group(1) for line in lines if (m := re.match(r"exten => ([^,]+),1,", line))}


def test_each_extension_lives_in_its_context(files: dict[str, str]) -> None:
    contexts = sections(files["extensions.conf"])
    assert extensions(contexts["hotline-route"]) == {
        "dial",
        "queue",
        "voicemail",
        "hangup",
        "failure",
        "callback",  # a call back chosen in a menu ends here
    }
    assert extensions(contexts["hotline-answered"]) == {"s"}
    assert extensions(contexts["hotline-entry"]) == {"s"}
    assert extensions(contexts["hotline-hangup"]) == {"s"}
    assert {"02437655555", "8000"} <= extensions(contexts["hotline-inbound"])


def test_entry_falls_back_to_the_script_then_the_operator(files: dict[str, str]) -> None:
    entry = "\n".join(sections(files["extensions.conf"])["hotline-entry"])
    assert "AGI(${HL_AGI}/hotline-entry" in entry
    assert 'GotoIf($["${AGISTATUS}" != "SUCCESS"]?fallback)' in entry
    assert "agi_scripts/hotline_fallback.py" in entry
    assert entry.rstrip().endswith("Goto(hotline-route,failure,1)")


def test_trunk_identifies_callers_and_phones_register(files: dict[str, str]) -> None:
    pjsip = sections(files["pjsip.conf"])
    assert "bind=127.0.0.1:5060" in "\n".join(pjsip["transport-udp"])
    trunk = "\n".join(pjsip["pstn"])
    assert "context=hotline-inbound" in trunk and "match=127.0.0.1" in trunk
    assert "dtmf_mode=rfc4733" in trunk and "contact=sip:127.0.0.1:5070" in trunk
    assert "max_contacts=1" in "\n".join(pjsip["dtv-01"])


def test_ami_user_is_loopback_only_with_least_rights(files: dict[str, str]) -> None:
    manager = sections(files["manager.conf"])
    assert "bindaddr=127.0.0.1" in manager["general"]
    user = manager["hotline"]
    assert "permit=127.0.0.1/255.255.255.255" in user and "deny=0.0.0.0/0.0.0.0" in user
    write = next(line for line in user if line.startswith("write="))
    assert "config" not in write and "command" not in write and "system" not in write
    # The second user may reload modules (config applied from the console), nothing else.
    reloader = manager["hotline-reload"]
    assert "write=system" in reloader and "read=system" in reloader
    assert "permit=127.0.0.1/255.255.255.255" in reloader and "deny=0.0.0.0/0.0.0.0" in reloader


def test_queues_and_rtp(files: dict[str, str], config: HotlineConfig) -> None:
    queues = sections(files["queues.conf"])
    assert set(queues) - {"general"} == {q.id for q in config.queues}
    assert "wrapuptime=20" in queues["procedures"]
    assert sections(files["rtp.conf"])["general"][:2] == ["rtpstart=10000", "rtpend=20000"]


@pytest.mark.parametrize("callback", [True, False])
@pytest.mark.parametrize("auto_pause", [True, False])
def test_auto_pause_is_rendered_whether_or_not_the_queue_offers_callback(
    config: HotlineConfig, callback: bool, auto_pause: bool
) -> None:
    # Issue 12: autopause used to be written only inside the callback branch, so
    # `auto_pause: true` on a queue without callback was silently lost.
    queue = config.queues[0].model_copy(update={"callback": callback, "auto_pause": auto_pause})
    changed = config.model_copy(update={"queues": [queue, *config.queues[1:]]})
    rendered = render_queues(changed, RenderOptions(Path("/p"), Path("/p/moh"), Path("/r"), {}))
    lines = sections(rendered)[queue.id]
    assert f"autopause={'yes' if auto_pause else 'no'}" in lines
    assert [line for line in lines if line.startswith("autopause=")] == [
        f"autopause={'yes' if auto_pause else 'no'}"
    ]
    assert ("context=hotline-queue-exit" in lines) is callback


def test_routing_table_for_the_fallback_script(config: HotlineConfig) -> None:
    table = build_routing_table(config)["hotlines"]["bac-tu-liem"]
    assert table["failure_queue"] == "operator"
    ward = table["area_menus"][0]["shortcuts"]["03"]
    assert ward["area"] == "dong-ngac"
    assert ward["targets"][0]["dial"] == "PJSIP/0900000103@pstn"
    assert ward["final_queue"] == "operator"
