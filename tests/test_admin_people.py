"""The people forms' text building (ivr/web/admin_people.py): each form's
change touches only the lines of what the clerk changed, in the file's own
style, and what it builds reads back as the intended config; a new phone
never gets its secret written into the config; a new secret for a phone
replaces the stored one in the 0600 file (ivr/config/phone_secrets.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ivr.config import load_config
from ivr.config.phone_secrets import new_phone_secret, phone_secret, phone_secrets_path
from ivr.web.admin_people import (
    AgentForm,
    PhoneForm,
    QueueForm,
    agent_text,
    phone_text,
    queue_text,
    remove_agent_text,
)
from tests.rig.console import changed_lines

REPO = Path(__file__).resolve().parents[1]
COMBINED = REPO / "examples" / "combined.yaml"


@pytest.fixture(scope="module")
def text() -> str:
    return COMBINED.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def config(text: str):  # type: ignore[no-untyped-def]
    return load_config(COMBINED, text=text)


def _queue_index(config, queue_id: str) -> int:  # type: ignore[no-untyped-def]
    return next(i for i, q in enumerate(config.queues) if q.id == queue_id)


def test_queue_form_changes_only_the_changed_numbers_and_members(text: str, config) -> None:  # type: ignore[no-untyped-def]
    index = _queue_index(config, "btl-thu-tuc")
    queue = config.queues[index]
    form = QueueForm(
        id=queue.id, title=queue.title, hotline="bac-tu-liem-2026", strategy=queue.strategy,
        numbers={"ring_seconds": queue.ring_seconds, "wrapup_seconds": 25,
                 "service_level_seconds": 20, "max_wait_seconds": queue.max_wait_seconds},
        members=["btl01", "btl02", "btl03"],
    )  # fmt: skip
    new = queue_text(text, index, form)
    removed, added = changed_lines(text, new)
    # The queue's last line, nothing else (the new key joins its flow mapping).
    assert removed == ["     wrapup_seconds: 20, members: [btl01, btl02]}"]
    assert added == [
        "     wrapup_seconds: 25, members: [btl01, btl02, btl03], service_level_seconds: 20}"
    ]
    data = yaml.safe_load(new)["queues"][index]
    assert data["wrapup_seconds"] == 25 and data["service_level_seconds"] == 20
    assert data["members"] == ["btl01", "btl02", "btl03"]
    assert "ring_seconds" not in data  # a default not written out
    assert load_config(COMBINED, text=new).queues[index].members == ["btl01", "btl02", "btl03"]


def test_queue_form_without_changes_leaves_the_file_as_it_was(text: str, config) -> None:  # type: ignore[no-untyped-def]
    index = _queue_index(config, "hcc-can-bo")
    queue = config.queues[index]
    form = QueueForm(
        queue.id, queue.title, queue.hotline, queue.strategy,
        {n: getattr(queue, n) for n in ("ring_seconds", "wrapup_seconds")}, list(queue.members),
    )  # fmt: skip
    assert queue_text(text, index, form) == text


def test_removing_a_member_keeps_the_other_members(text: str, config) -> None:  # type: ignore[no-untyped-def]
    index = _queue_index(config, "btl-tong-dai")
    queue = config.queues[index]
    form = QueueForm(queue.id, queue.title, None, queue.strategy, {}, ["btl01", "btl03", "btl04"])
    new = queue_text(text, index, form)
    removed, added = changed_lines(text, new)
    assert removed == ["     members: [btl01, btl02, btl03, btl04]}"]
    assert added == ["     members: [btl01, btl03, btl04]}"]


def test_new_queue_is_one_line_in_the_files_style_with_typed_values_kept(text: str) -> None:
    form = QueueForm("btl-dat-dai", "Đất đai", "bac-tu-liem-2026", "ringall",
                     {"ring_seconds": 20, "wrapup_seconds": "mười"}, ["btl01"])  # fmt: skip
    new = queue_text(text, None, form)
    removed, added = changed_lines(text, new)
    assert removed == []
    assert added == [
        "  - {id: btl-dat-dai, title: Đất đai, strategy: ringall, ring_seconds: 20, "
        "wrapup_seconds: mười, hotline: bac-tu-liem-2026, members: [btl01]}"
    ]


def test_new_agent_goes_into_the_queues_ticked(text: str, config) -> None:  # type: ignore[no-untyped-def]
    managed = [q.id for q in config.queues if q.hotline == "thanh-xuan"]
    form = AgentForm("tx04", "Trần Thị Mơ", "tx-mot-cua-03", "thanh-xuan", ["tx-can-bo"])
    new = agent_text(text, config, None, form, managed)
    removed, added = changed_lines(text, new)
    assert removed == ["     wrapup_seconds: 60, members: [tx03]}"]
    assert "     wrapup_seconds: 60, members: [tx03, tx04]}" in added
    assert any("{id: tx04, name: Trần Thị Mơ" in line for line in added)
    reread = load_config(COMBINED, text=new)
    assert reread.queue("tx-can-bo").members == ["tx03", "tx04"]  # type: ignore[union-attr]
    assert reread.agent_owner("tx04") == "thanh-xuan"


def test_agent_form_leaves_queues_it_did_not_show_alone(text: str, config) -> None:  # type: ignore[no-untyped-def]
    index = next(i for i, a in enumerate(config.agents) if a.id == "hcc03")
    # Only hcc-thu-tuc shown: hcc-can-bo's membership is not the form's to change.
    form = AgentForm("hcc03", "Lê Minh Châu", "hcc-dtv-03", None, [])
    new = agent_text(text, config, index, form, ["hcc-thu-tuc"])
    reread = load_config(COMBINED, text=new)
    assert "hcc03" not in reread.queue("hcc-thu-tuc").members  # type: ignore[union-attr]
    assert "hcc03" in reread.queue("hcc-can-bo").members  # type: ignore[union-attr]


def test_removing_an_agent_takes_them_out_of_queues_and_roster(text: str, config) -> None:  # type: ignore[no-untyped-def]
    agent_id = config.roster.assignments[0].agents[0]
    index = next(i for i, a in enumerate(config.agents) if a.id == agent_id)
    new = remove_agent_text(text, config, index)
    reread = load_config(COMBINED, text=new)  # check-config's checks pass
    assert agent_id not in {a.id for a in reread.agents}
    assert all(agent_id not in e.agents for e in reread.roster.assignments)


def test_new_phone_is_written_without_a_secret(text: str) -> None:
    new = phone_text(text, None, PhoneForm("btl-dtv-09", "Bàn 09", None))
    removed, added = changed_lines(text, new)
    assert removed == [] and len(added) == 1
    assert "secret" not in added[0]
    phone = load_config(COMBINED, text=new).phones[-1]
    assert phone.id == "btl-dtv-09" and phone.secret is None


def test_clearing_a_phones_fixed_address_removes_the_key(tmp_path: Path) -> None:
    text = "phones:\n  - {id: a, name: A, contact: 'sip:a@127.0.0.1:5070'}\n  - {id: b}\n"
    assert (
        phone_text(text, 0, PhoneForm("a", "A", None))
        == "phones:\n  - {id: a, name: A}\n  - {id: b}\n"
    )


def test_a_new_secret_replaces_the_stored_one_in_the_private_file(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "examples" / "bac-tu-liem.yaml").read_text(encoding="utf-8"))
    data["paths"]["phone_secrets"] = str(tmp_path / "phone-secrets.json")
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = load_config(path)
    phone_id = config.phones[0].id
    first = phone_secret(config, phone_id)
    issued = new_phone_secret(config, phone_id)
    assert issued != first and phone_secret(config, phone_id) == issued
    assert phone_secrets_path(config).stat().st_mode & 0o777 == 0o600
    assert issued not in path.read_text(encoding="utf-8")
    with pytest.raises(KeyError):
        new_phone_secret(config, "no-such-phone")
