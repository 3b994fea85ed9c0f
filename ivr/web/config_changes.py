"""Every change the administration forms make goes through here: a readable
difference first, then applied live, audited with who and why, and undone from
the history in one step.

A form builds the whole new config text from the current one with
:mod:`ivr.config.yaml_edit` and calls :func:`preview_change`. The preview
checks it exactly as ``check-config`` does (and refuses the settings the
console may not change), names each problem's field in the clerk's words
(:func:`field_label`), else lists what changes in words plus the changed lines
(secrets masked), with a "reason" field and an Apply button.

The new text never goes to the browser (it may hold a phone's new secret): it
waits here, under a random token bound to the user who previewed it, with the
hash of the text it was made from. Applying re-checks that hash under the
applier's lock (someone else's change in between is refused: the form is
opened again on the new text), applies through the same
:class:`~ivr.config_applier.ConfigApplier` as the YAML editor (no call
dropped), writes one line to the change journal and one audit entry, and
redirects to the form with ``notice=applied``.

The journal (``changes.jsonl`` in ``paths.config_history``, beside the copies
of earlier versions the applier keeps) records per change: when, who, why,
the summary, the copy of the version it replaced and the hotlines it touched.
The history page lists it; "undo" previews going back to the version a change
replaced and applies it the same way (audited as a rollback).

Who may change what (decided here, for every form at once): administrators
anything the console may change; a supervisor tied to one hotline only what
belongs to that hotline — its queues, its agents, its roster entries, its own
hotline entry, and in a single-hotline file the areas, departments, phones,
schedules, holidays and prompts too (they can only be that hotline's). The
machinery (Asterisk, database, paths, web, trunks, email, SMS, retention...)
and, in a file with several hotlines, anything shared stays with the
administrators. A supervisor with no hotline set (a deployment serving one
authority) acts for every hotline: any hotline's items, never the machinery or
what several hotlines share. Other roles change nothing.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import itertools
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from weakref import WeakKeyDictionary

import yaml
from aiohttp import web

from ivr.config.edit import check_config_text
from ivr.config.loader import ConfigError, ConfigProblem
from ivr.config.safe_text import is_secret_field
from ivr.config.schema import HotlineConfig
from ivr.config.secret_mask import mask_secrets
from ivr.config.yaml_lines import FieldPath
from ivr.config_applier import AppliedConfig, ConfigApplier, StaleConfigError
from ivr.web.i18n import N_
from ivr.web.models import ADMIN, SUPERVISOR, WebUser
from ivr.web.rendering import error_page, form_or_json, render, wants_json
from ivr.web.state import LANGUAGE, WATCHERS, Route, audit, state_of, user_of

logger = logging.getLogger(__name__)

JOURNAL = "changes.jsonl"
PENDING_SECONDS = 3600  # a preview left open longer is previewed again
PENDING_PER_APPLIER = 200  # oldest previews are forgotten beyond this
HISTORY_ROWS = 200
REASON_MIN, REASON_MAX = 3, 500
SUMMARY_MAX = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FIELD_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

# --- the clerk's words for config fields -------------------------------------------

# Labels by pattern: "*" matches any one part (a list index, a schedule's
# name), "**" any number of parts (the area tree's children at any depth).
_LABELS: list[tuple[tuple[str, ...], str, str]] = [
    (("areas", "**", "chairman"), "Chủ tịch", "Chairman"),
    (("areas", "**", "fallbacks", "*"), "Người nghe thay", "Fallback"),
    (("areas", "**", "fallbacks"), "Thứ tự người nghe thay", "Fallback chain"),
    (("areas", "**", "name"), "Tên đơn vị", "Name"),
    (("areas", "**", "shortcut"), "Phím tắt", "Shortcut key"),
    (("areas", "**", "ring_seconds"), "Thời gian đổ chuông (giây)", "Ring time (seconds)"),
    (("areas", "**", "aliases"), "Tên gọi khác", "Other names"),
    (("areas", "**", "children", "*"), "Đơn vị trực thuộc", "Subordinate unit"),
    (("areas",), "Địa bàn", "Areas"),
    (("departments", "*", "name"), "Tên phòng ban", "Department name"),
    (("departments", "*", "extension"), "Số máy lẻ", "Extension"),
    (("departments", "*", "target"), "Nơi nhận cuộc gọi", "Rings"),
    (("departments", "*", "code"), "Mã phòng ban", "Department code"),
    (("departments", "*"), "Phòng ban", "Department"),
    (("departments",), "Phòng ban", "Departments"),
    (("queues", "*", "members", "*"), "Thành viên hàng đợi", "Queue member"),
    (("queues", "*", "members"), "Thành viên hàng đợi", "Queue members"),
    (("queues", "*", "title"), "Tên hàng đợi", "Queue name"),
    (("queues", "*", "schedule"), "Giờ làm việc của hàng đợi", "Queue's office hours"),
    (("queues", "*", "ring_seconds"), "Thời gian đổ chuông (giây)", "Ring time (seconds)"),
    (
        ("queues", "*", "wrapup_seconds"),
        "Thời gian hoàn tất sau cuộc gọi (giây)",
        "Wrap-up time (seconds)",
    ),
    (("queues", "*", "strategy"), "Cách phân cuộc gọi", "Ring strategy"),
    (("queues", "*"), "Hàng đợi", "Queue"),
    (("queues",), "Hàng đợi", "Queues"),
    (("phones", "*", "name"), "Tên máy", "Phone name"),
    (("phones", "*", "secret"), "Mật khẩu máy", "Phone secret"),
    (("phones", "*", "contact"), "Địa chỉ máy", "Phone address"),
    (("phones", "*"), "Máy điện thoại", "Phone"),
    (("phones",), "Máy điện thoại", "Phones"),
    (("agents", "*", "name"), "Tên điện thoại viên", "Agent's name"),
    (("agents", "*", "phone"), "Máy của điện thoại viên", "Agent's phone"),
    (("agents", "*", "hotline"), "Đường dây của điện thoại viên", "Agent's hotline"),
    (("agents", "*"), "Điện thoại viên", "Agent"),
    (("agents",), "Điện thoại viên", "Agents"),
    (("schedules", "*", "weekly", "*"), "Giờ làm việc trong ngày", "Hours of the day"),
    (("schedules", "*", "closed_on_holidays"), "Nghỉ ngày lễ", "Closed on holidays"),
    (("schedules", "*", "always"), "Trực 24/7", "Open 24/7"),
    (("schedules", "*"), "Giờ làm việc", "Office hours"),
    (("schedules",), "Giờ làm việc", "Office hours"),
    (("holidays", "*", "date"), "Ngày nghỉ lễ", "Holiday date"),
    (("holidays", "*", "name"), "Tên ngày lễ", "Holiday name"),
    (("holidays", "*"), "Ngày nghỉ lễ", "Holiday"),
    (("holidays",), "Ngày nghỉ lễ", "Holidays"),
    (("holidays_from",), "Lịch nghỉ lễ tính sẵn", "Computed holidays"),
    (("working_days", "*"), "Ngày làm bù", "Working day"),
    (("working_days",), "Ngày làm bù", "Working days"),
    (("roster", "shifts", "*", "hours"), "Giờ của ca", "Shift hours"),
    (("roster", "shifts", "*", "min_agents"), "Số người tối thiểu của ca", "Shift minimum staff"),
    (("roster", "shifts", "*"), "Ca trực", "Shift"),
    (("roster", "assignments", "*", "agents"), "Người trực", "Agents on duty"),
    (("roster", "assignments", "*", "weekdays"), "Ngày trong tuần", "Weekdays"),
    (("roster", "assignments", "*"), "Lịch trực", "Roster entry"),
    (("roster", "overrides", "*", "agents"), "Người trực ngày riêng", "Agents on that day"),
    (("roster", "overrides", "*"), "Lịch trực ngày riêng", "Day override"),
    (("roster",), "Lịch trực", "Roster"),
    (
        ("hotlines", "*", "prompts", "out_of_scope", "*"),
        "Lời hướng dẫn nơi gửi khiếu nại",
        "Complaints referral text",
    ),
    (
        ("hotlines", "*", "prompts", "complaints_referral", "*"),
        "Lời hướng dẫn nơi gửi khiếu nại",
        "Complaints referral text",
    ),
    (("hotlines", "*", "prompts", "*", "vi"), "Lời nhắc (tiếng Việt)", "Prompt text (Vietnamese)"),
    (("hotlines", "*", "prompts", "*", "en"), "Lời nhắc (tiếng Anh)", "Prompt text (English)"),
    (("hotlines", "*", "prompts", "*"), "Lời nhắc", "Prompt text"),
    (("hotlines", "*", "schedule"), "Giờ làm việc của đường dây", "Hotline's office hours"),
    (("hotlines", "*", "name"), "Tên đường dây", "Hotline name"),
    (("hotlines", "*", "greeting_prompts"), "Lời chào", "Greeting"),
    (("hotlines", "*"), "Đường dây nóng", "Hotline"),
    (("hotlines",), "Đường dây nóng", "Hotlines"),
]

_DAYS = {
    "mon": ("thứ Hai", "Monday"), "tue": ("thứ Ba", "Tuesday"), "wed": ("thứ Tư", "Wednesday"),
    "thu": ("thứ Năm", "Thursday"), "fri": ("thứ Sáu", "Friday"), "sat": ("thứ Bảy", "Saturday"),
    "sun": ("Chủ nhật", "Sunday"),
}  # fmt: skip

# Generic words for the parts of a path no pattern covers.
_WORDS: dict[str, tuple[str, str]] = {
    "name": ("tên", "name"),
    "title": ("tên", "title"),
    "members": ("thành viên", "members"),
    "agents": ("người trực", "agents"),
    "date": ("ngày", "date"),
    "hours": ("giờ", "hours"),
    "schedule": ("giờ làm việc", "office hours"),
    "secret": ("mật khẩu", "secret"),
    "phone": ("máy", "phone"),
}


def _matches(pattern: tuple[str, ...], path: FieldPath) -> bool:
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_matches(rest, path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    if head == "*" or head == str(path[0]):
        return _matches(rest, path[1:])
    return False


def field_label(path: FieldPath, language: str) -> str:
    """The name of a config field as the clerk knows it, Vietnamese first
    (``("areas", 0, "children", 3, "chairman")`` → "Chủ tịch"); a field with no
    label of its own is named from its parts."""
    english = language == "en"
    if len(path) >= 4 and path[0] == "schedules" and path[2] == "weekly" and path[3] in _DAYS:
        vi_day, en_day = _DAYS[str(path[3])]
        return f"Hours on {en_day}" if english else f"Giờ làm việc {vi_day}"
    for pattern, vi, en in _LABELS:
        if _matches(pattern, path):
            return en if english else vi
    words = []
    for part in path:
        if isinstance(part, int):
            words.append(f"#{part + 1}")
        else:
            vi_en = _WORDS.get(part)
            words.append((vi_en[1] if english else vi_en[0]) if vi_en else part.replace("_", " "))
    text = " › ".join(words)
    return text[:1].upper() + text[1:]


def parse_field(text: str) -> FieldPath:
    """``areas[0].children[2].chairman`` (as check-config names fields) → a path."""
    return tuple(int(index) if index else name for name, index in _FIELD_PART.findall(text or ""))


_ADMIN_NOUNS = ("Phường ", "Quận ", "Xã ", "Huyện ", "Thị trấn ", "Thành phố ", "Tỉnh ", "Phòng ")


def _item_name(data: Any, path: FieldPath, language: str) -> str:
    """The name of the item a path is in (the ward, the queue, the agent), as
    the list it belongs to names it."""
    node = data
    name = ""
    for part in path:
        try:
            node = node[int(part)] if isinstance(node, list) else node[str(part)]
        except (KeyError, IndexError, TypeError, ValueError):
            break
        if isinstance(node, dict):
            for key in ("name", "title", "id", "code", "shift", "date"):
                if isinstance(node.get(key), str | int) or (key == "date" and key in node):
                    name = str(node[key])
                    break
    if language != "en" and name.startswith(_ADMIN_NOUNS):
        # "Chủ tịch phường Đông Ngạc", as one says it.
        name = name[:1].lower() + name[1:]
    return name


def describe_field(data: Any, path: FieldPath, language: str) -> str:
    """The label and the item it belongs to: "Chủ tịch phường Đông Ngạc"."""
    label = field_label(path, language)
    name = _item_name(data, path[:-1], language) if path else ""
    if not name:
        return label
    return f"{label} ({name})" if language == "en" else f"{label} {name}"


# --- what a change changes ------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    path: FieldPath
    label: str
    before: str  # "" when the field is new
    after: str  # "" when the field goes


_SECRET_KEYS = frozenset({"secret", "reload_secret", "password", "token", "api_key"})


_DESTINATION_KEYS = frozenset(
    {"chairman", "fallbacks", "target", "destination", "out_of_hours", "failure_destination"}
)
_DESTINATION = re.compile(r"^(tel|phone|queue|area|department|menu):([^@\s]+)(?:@(\S+))?$")
_DESTINATION_WORDS = {
    "phone": ("máy", "phone"), "queue": ("hàng đợi", "queue"), "area": ("đơn vị", "unit"),
    "department": ("phòng ban", "department"), "menu": ("menu", "menu"),
    "voicemail": ("hộp thư thoại", "voicemail"), "hangup": ("gác máy", "hang up"),
}  # fmt: skip


def _destination_in_words(value: str, language: str) -> str:
    """``tel:0913000103@pstn`` → "0913000103 (qua pstn)"; ``queue:operator`` →
    "hàng đợi operator": a destination as the clerk says it."""
    english = language == "en"
    if value in _DESTINATION_WORDS:
        return _DESTINATION_WORDS[value][english]
    match = _DESTINATION.match(value)
    if match is None:
        return value
    kind, name, trunk = match.groups()
    if kind == "tel":
        return f"{name} ({'via' if english else 'qua'} {trunk})" if trunk else name
    return f"{_DESTINATION_WORDS[kind][english]} {name}"


_HIDDEN = "••••••"


def _is_secret(path: FieldPath) -> bool:
    keys = [part for part in path if isinstance(part, str)]
    return (bool(keys) and keys[-1] in _SECRET_KEYS) or is_secret_field(path)


def _without_secrets(value: Any, path: FieldPath) -> Any:
    """``value`` with every secret inside it hidden: a phone, a trunk or a
    channel's section added or removed whole is one change, and its secret
    (or a database URL's password) must not show in it."""
    if _is_secret(path):
        return _HIDDEN
    if isinstance(value, dict):
        return {k: _without_secrets(v, (*path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_secrets(v, (*path, i)) for i, v in enumerate(value)]
    return value


def _shown(value: Any, path: FieldPath, language: str = "vi") -> str:
    if value is None:
        return ""
    keys = [part for part in path if isinstance(part, str)]
    if _is_secret(path):
        return _HIDDEN
    value = _without_secrets(value, path)
    if keys and keys[-1] in _DESTINATION_KEYS:
        if isinstance(value, str):
            return _destination_in_words(value, language)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ", ".join(_destination_in_words(v, language) for v in value)
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _key_of(item: Any) -> Any:
    if isinstance(item, dict):
        for key in ("id", "code", "date"):
            if key in item:
                return (key, str(item[key]))
    return None


def _changed_paths(old: Any, new: Any, here: FieldPath = ()) -> list[tuple[FieldPath, Any, Any]]:
    """The leaf fields that differ, as ``(path, before, after)``. Lists of
    records are matched by their id/code (an inserted ward is one change, not
    one per following ward); lists of plain values are one field."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[tuple[FieldPath, Any, Any]] = []
        for key in list(old) + [k for k in new if k not in old]:
            if old.get(key) != new.get(key) or (key in old) != (key in new):
                out.extend(_changed_paths(old.get(key), new.get(key), (*here, str(key))))
        return out
    if (
        isinstance(old, list)
        and isinstance(new, list)
        and old
        and new
        and all(_key_of(i) is not None for i in old + new)
    ):
        out = []
        new_by_key = {_key_of(item): (index, item) for index, item in enumerate(new)}
        old_keys = set()
        for index, item in enumerate(old):
            key = _key_of(item)
            old_keys.add(key)
            if key in new_by_key:
                new_index, new_item = new_by_key[key]
                out.extend(_changed_paths(item, new_item, (*here, new_index)))
            else:
                out.append(((*here, index), item, None))
        for key, (index, item) in new_by_key.items():
            if key not in old_keys:
                out.append(((*here, index), None, item))
        return out
    if old == new and type(old) is type(new):
        return []
    return [(here, old, new)]


def describe_changes(old: Any, new: Any, language: str) -> list[FieldChange]:
    """What a change changes, in words: one line per field."""
    changes = []
    for path, before, after in _changed_paths(old, new):
        data = new if after is not None else old
        changes.append(
            FieldChange(
                path,
                describe_field(data, path, language),
                _shown(before, path, language),
                _shown(after, path, language),
            )
        )
    return changes


def text_diff(old_text: str, new_text: str) -> list[str]:
    """The changed lines (three lines of context), secrets masked on both sides."""
    return list(
        difflib.unified_diff(
            mask_secrets(old_text).splitlines(),
            mask_secrets(new_text).splitlines(),
            "trước",
            "sau",
            lineterm="",
            n=3,
        )
    )


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- who may change what ----------------------------------------------------------------

# Never a supervisor's: what runs the service rather than the hotline.
_MACHINERY = frozenset(
    {
        "timezone",
        "asterisk",
        "database",
        "paths",
        "trunks",
        "web",
        "cluster",
        "transcription",
        "recording",
        "cases",
        "sms",
        "email",
        "retention",
        "intake",
        "open311",
        "zalo",
        "metrics",
    }
)
# In a single-hotline file these can only be that hotline's.
_SOLE_HOTLINE_ITEMS = frozenset(
    {
        "areas",
        "departments",
        "phones",
        "schedules",
        "holidays",
        "holidays_from",
        "working_days",
        "queues",
        "agents",
        "roster",
        "hotlines",
        "units",
        "pause_reasons",
    }
)


def path_owner(config: HotlineConfig, data: dict[str, Any], path: FieldPath) -> str | None:
    """The hotline a changed field belongs to; None: to the deployment (an
    administrator's change)."""
    if not path or str(path[0]) in _MACHINERY:
        return None
    top = str(path[0])
    sole = config.sole_hotline()
    if sole is not None:
        return sole.id if top in _SOLE_HOTLINE_ITEMS else None
    item: Any = None
    if len(path) > 1 and isinstance(path[1], int):
        items = data.get(top)
        if isinstance(items, list) and path[1] < len(items):
            item = items[path[1]]
    if top in ("queues", "agents") and isinstance(item, dict):
        return item.get("hotline")
    if top == "hotlines" and isinstance(item, dict):
        return item.get("id")
    if top == "roster" and len(path) > 2 and isinstance(path[2], int):
        entries = (data.get("roster") or {}).get(str(path[1])) or []
        if path[2] < len(entries) and isinstance(entries[path[2]], dict):
            queue = entries[path[2]].get("queue")
            return config.queue_owner(queue) if queue else None
    return None


def refused_fields(
    user: WebUser, config: HotlineConfig, old: dict[str, Any], new: dict[str, Any]
) -> list[FieldPath]:
    """The changed fields this user may not change (none for an administrator)."""
    if user.role == ADMIN:
        return []
    refused = []
    for path, before, after in _changed_paths(old, new):
        if user.role != SUPERVISOR:
            refused.append(path)
            continue
        # The field's owner before and after: moving a queue to one's own
        # hotline is as much a change to the other hotline as the reverse.
        owners = set()
        if before is not None:
            owners.add(path_owner(config, old, path))
        if after is not None:
            owners.add(path_owner(config, new, path))
        others = user.hotline_id is not None and owners != {user.hotline_id}
        # An agent of theirs, but on a phone another hotline's agent answers on.
        foreign_phone = user.hotline_id is not None and _phone_of(path, after) in (
            _foreign_phones(config, old, user.hotline_id)
        )
        if None in owners or others or foreign_phone:
            refused.append(path)
    return refused


def _phone_of(path: FieldPath, after: Any) -> str | None:
    """The desk phone a changed field gives an agent (a changed ``phone``, or
    a new agent's), else None."""
    if len(path) < 2 or path[0] != "agents" or not isinstance(path[1], int):
        return None
    if len(path) == 2 and isinstance(after, dict):
        after = after.get("phone")
    elif path[2:] != ("phone",):
        return None
    return after if isinstance(after, str) else None


def _foreign_phones(config: HotlineConfig, data: dict[str, Any], hotline_id: str) -> set[str]:
    """The phones that answer calls of other hotlines than ``hotline_id``:
    their agents' desk phones and, in a file with several hotlines, every
    phone a ward, a department or another hotline's menu rings (those are
    shared). An agent user reads the calls answered at their agent's phone
    whatever their hotline (:meth:`ivr.web.access.AccessScope.handled_calls`):
    a supervisor who gave their own agent such a phone would read, and take,
    another hotline's calls through an agent user they create."""
    phones = {a.phone for a in config.agents if config.agent_owner(a.id) != hotline_id}
    if config.sole_hotline() is None:
        for key, value in data.items():
            if key == "hotlines" and isinstance(value, list):
                value = [h for h in value if isinstance(h, dict) and h.get("id") != hotline_id]
            if key not in ("agents", "phones"):
                phones.update(_rung_phones(value))
    return phones


def _rung_phones(value: Any) -> Iterator[str]:
    """The phones the destinations in a part of the raw config name (``phone:<id>``)."""
    if isinstance(value, str):
        match = _DESTINATION.match(value)
        if match and match[1] == "phone":
            yield match[2]
    elif isinstance(value, dict):
        for item in value.values():
            yield from _rung_phones(item)
    elif isinstance(value, list):
        for item in value:
            yield from _rung_phones(item)


# --- previews waiting for their Apply ---------------------------------------------------


@dataclass
class PendingChange:
    username: str
    new_text: str
    base_hash: str
    summary: str
    back: str
    kind: str  # "change" or "rollback"
    created: float = field(default_factory=time.monotonic)


_PENDING: WeakKeyDictionary[ConfigApplier, dict[str, PendingChange]] = WeakKeyDictionary()


def _pending_of(applier: ConfigApplier) -> dict[str, PendingChange]:
    pending = _PENDING.setdefault(applier, {})
    now = time.monotonic()
    for token in [t for t, p in pending.items() if now - p.created > PENDING_SECONDS]:
        del pending[token]
    while len(pending) >= PENDING_PER_APPLIER:
        del pending[next(iter(pending))]
    return pending


def _safe_back(back: str) -> str:
    """Only a path on this site (no open redirect through ``back``)."""
    parts = urlsplit(back or "")
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or back.startswith("//"):
        return "/admin/changes"
    # Browsers read "/\\host" as "//host": no backslash either.
    if _CONTROL.search(back) or "\\" in back:
        return "/admin/changes"
    return back


def _with_notice(back: str, notice: str) -> str:
    parts = urlsplit(back)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "notice"]
    query.append(("notice", notice))
    return urlunsplit(("", "", parts.path, urlencode(query), parts.fragment))


def _language(request: web.Request) -> str:
    return request.get(LANGUAGE, state_of(request).config.web.default_language)


# --- the preview ---------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledProblem:
    label: str
    line: int | None
    field: str
    message: str  # in the clerk's words
    original: str  # check-config's own


_KINDS_VI = {
    "queue": "hàng đợi",
    "phone": "máy điện thoại",
    "area": "đơn vị",
    "agent": "điện thoại viên",
    "department": "phòng ban",
    "schedule": "lịch giờ làm việc",
    "shift": "ca trực",
    "trunk": "đường trung kế",
    "menu": "menu",
    "hotline": "đường dây",
    "topic": "chủ đề",
    "prompt": "lời nhắc",
    "field": "mục",
}
# check-config's messages (ivr/config/loader.py, references.py and pydantic's)
# as a clerk reads them; the original stays beside it for whoever fixes the file.
_IN_WORDS: list[tuple[re.Pattern[str], Any]] = [
    (
        re.compile(r"^unknown (\w+) '([^']*)'(?: \(known: (.*)\))?"),
        lambda m: (
            f"không có {_KINDS_VI.get(m[1], m[1])} “{m[2]}”"
            + (f" (đang có: {m[3]})" if m[3] else "")
        ),
    ),
    (re.compile(r"^duplicate (.+?) '([^']*)'"), lambda m: f"“{m[2]}” bị trùng"),
    (
        re.compile(r"^'([^']*)': expected tel:"),
        lambda m: f"“{m[1]}” không phải số điện thoại (cần dạng tel:<chữ số>@<đường trung kế>)",
    ),
    (
        re.compile(r"^String should match pattern .*\(got '([^']*)'\)"),
        lambda m: f"“{m[1]}” không đúng định dạng",
    ),
    (re.compile(r"^String should have at least 1 character"), lambda m: "không được để trống"),
    (
        re.compile(r"^String should have at least (\d+) characters"),
        lambda m: f"cần ít nhất {m[1]} ký tự",
    ),
    (re.compile(r"^String should have at most (\d+) characters"), lambda m: f"tối đa {m[1]} ký tự"),
    (
        re.compile(r"^Input should be less than or equal to (\S+)"),
        lambda m: f"phải nhỏ hơn hoặc bằng {m[1]}",
    ),
    (
        re.compile(r"^Input should be greater than or equal to (\S+)"),
        lambda m: f"phải lớn hơn hoặc bằng {m[1]}",
    ),
    (re.compile(r"^Input should be a valid integer"), lambda m: "phải là một số nguyên"),
    (re.compile(r"^Input should be a valid date"), lambda m: "phải là một ngày (năm-tháng-ngày)"),
    (
        re.compile(r"^control character"),
        lambda m: "không được có xuống dòng, tab hay ký tự điều khiển",
    ),
    (
        re.compile(r"^may not be changed from the console"),
        lambda m: "không được sửa từ bảng điều khiển (chỉ sửa trên máy chủ)",
    ),
    (re.compile(r"^Field required"), lambda m: "bắt buộc phải có"),
]


def problem_in_words(message: str, language: str) -> str:
    """A check-config message as a clerk reads it (Vietnamese; English is
    check-config's own)."""
    if language == "en":
        return message
    for pattern, words in _IN_WORDS:
        match = pattern.search(message)
        if match:
            return str(words(match))
    return message


def _labelled(problems: list[ConfigProblem], data: Any, language: str) -> list[LabelledProblem]:
    out = []
    for problem in problems:
        path = parse_field(problem.field)
        label = describe_field(data, path, language) if path else ""
        words = problem_in_words(problem.message, language)
        out.append(LabelledProblem(label, problem.line, problem.field, words, problem.message))
    return out


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load(text: str) -> dict[str, Any]:
    try:
        # libyaml's parser when built: a preview reads two whole files.
        data = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


async def preview_change(
    request: web.Request, *, new_text: str, summary: str, back: str, kind: str = "change"
) -> web.StreamResponse:
    """Show what ``new_text`` (the whole config, built from the current text)
    would change, checked as check-config does, with a reason field and an
    Apply button; or its problems, with each field named in the clerk's
    words (422). ``summary`` says in a line what the form did ("Chủ tịch
    phường Đông Ngạc"); ``back`` is where Apply and Cancel return."""
    state = state_of(request)
    applier = state.applier
    if applier is None:
        return error_page(request, 503, "Unavailable", "This process does not own the config.")
    user = user_of(request)
    language = _language(request)
    back = _safe_back(back)
    summary = _CONTROL.sub(" ", summary).strip()[:SUMMARY_MAX]
    current = await asyncio.to_thread(applier.current_text)
    old_data, new_data = _load(current), _load(new_text)
    context: dict[str, Any] = {
        "summary": summary,
        "back": back,
        "kind": kind,
        "problems": [],
        "changes": [],
        "diff": [],
        "token": "",
        "reason": "",
        "reason_error": "",
        "refused": [],
    }
    if new_text == current:
        if wants_json(request):
            return web.json_response({"ok": True, "unchanged": True})
        return render(request, "admin_change_preview.html", unchanged=True, **context)
    refused = refused_fields(user, state.config, old_data, new_data)
    if refused:
        await audit(
            request,
            "config_change_refused",
            str(state.config.source or ""),
            detail=f"not this user's: {', '.join(map(str, refused))}"[:500],
        )
        context["refused"] = [describe_field(new_data or old_data, p, language) for p in refused]
        if wants_json(request):
            return web.json_response(
                {"ok": False, "refused": context["refused"]}, status=web.HTTPForbidden.status_code
            )
        return render(request, "admin_change_preview.html", status=403, unchanged=False, **context)
    try:
        await asyncio.to_thread(check_config_text, applier.source, new_text, state.config)
    except ConfigError as exc:
        context["problems"] = _labelled(exc.problems, new_data or old_data, language)
        if wants_json(request):
            return web.json_response(
                {"ok": False, "problems": [
                    {"field": p.label, "message": p.message, "line": p.line, "path": p.field,
                     "original": p.original} for p in context["problems"]]},
                status=422,
            )  # fmt: skip
        context["diff"] = await asyncio.to_thread(text_diff, current, new_text)
        return render(request, "admin_change_preview.html", status=422, unchanged=False, **context)
    token = secrets.token_urlsafe(18)
    _pending_of(applier)[token] = PendingChange(
        user.username, new_text, text_hash(current), summary, back, kind
    )
    context.update(
        token=token,
        changes=describe_changes(old_data, new_data, language),
        # Masking secrets parses both files: off the event loop.
        diff=await asyncio.to_thread(text_diff, current, new_text),
    )
    if wants_json(request):
        return web.json_response(
            {
                "ok": True,
                "token": token,
                "summary": summary,
                "diff": context["diff"],
                "changes": [
                    {"field": c.label, "before": c.before, "after": c.after}
                    for c in context["changes"]
                ],
            }
        )
    return render(request, "admin_change_preview.html", unchanged=False, **context)


def check_reason(reason: str) -> str:
    """What is wrong with a reason (English source text, translated by the
    page); empty when it may be recorded."""
    if _CONTROL.search(reason):
        return N_("The reason may not contain line breaks or control characters.")
    if not REASON_MIN <= len(reason.strip()) <= REASON_MAX:
        return N_("Say why in 3 to 500 characters.")
    return ""


async def apply_change(request: web.Request) -> web.StreamResponse:
    """Apply a previewed change: same user, same base, a reason; then audited
    and journalled, and back to the form with ``notice=applied``."""
    state = state_of(request)
    applier = state.applier
    if applier is None:
        return error_page(request, 503, "Unavailable", "This process does not own the config.")
    user = user_of(request)
    form = await form_or_json(request)
    token = form.get("token", "")
    pending = _pending_of(applier).get(token)
    if pending is None or pending.username != user.username:
        return error_page(
            request,
            410,
            N_("This preview has expired"),
            N_("Open the form again and make the change once more."),
        )
    reason = form.get("reason", "")
    problem = check_reason(reason)
    current = await asyncio.to_thread(applier.current_text)
    if problem:
        language = _language(request)
        old_data, new_data = _load(current), _load(pending.new_text)
        return render(
            request,
            "admin_change_preview.html",
            status=422,
            unchanged=False,
            summary=pending.summary,
            back=pending.back,
            kind=pending.kind,
            problems=[],
            refused=[],
            changes=describe_changes(old_data, new_data, language),
            diff=await asyncio.to_thread(text_diff, current, pending.new_text),
            token=token,
            reason=reason,
            reason_error=problem,
        )
    reason = reason.strip()
    # The user's rights are checked again: the config may have moved a queue
    # between hotlines since the preview.
    if refused_fields(user, state.config, _load(current), _load(pending.new_text)):
        _pending_of(applier).pop(token, None)
        return error_page(request, 403, "Access denied", "Your role does not allow this page.")
    try:
        applied = await applier.apply_text(pending.new_text, base_sha256=pending.base_hash)
    except StaleConfigError:
        _pending_of(applier).pop(token, None)
        await audit(
            request,
            "config_change_stale",
            str(state.config.source or ""),
            detail=pending.summary[:500],
        )
        return render(
            request,
            "admin_change_stale.html",
            status=409,
            back=pending.back,
            summary=pending.summary,
            kind=pending.kind,
        )
    except ConfigError as exc:
        # Checked at preview time; only a change to what the check reads
        # (another file) can land here.
        language = _language(request)
        return render(
            request,
            "admin_change_preview.html",
            status=422,
            unchanged=False,
            summary=pending.summary,
            back=pending.back,
            kind=pending.kind,
            refused=[],
            problems=_labelled(exc.problems, _load(pending.new_text), language),
            changes=[],
            diff=await asyncio.to_thread(text_diff, current, pending.new_text),
            token="",
            reason=reason,
            reason_error="",
        )
    _pending_of(applier).pop(token, None)
    # The audit entry first: it is the record of trust. The journal feeds the
    # history page; the change is live whether or not it could be written.
    action = "config_rollback" if pending.kind == "rollback" else "config_change"
    await audit(
        request,
        action,
        str(state.config.source or ""),
        detail=f"{pending.summary} — {reason}"[:500],
    )
    touched = owners(state.config, _load(current), _load(pending.new_text))
    try:
        entry = await asyncio.to_thread(
            record_change, applied, user.username, reason, pending.summary, pending.kind, touched
        )
    except OSError:
        logger.exception("the change is applied but the change journal could not be written")
        entry = {"id": ""}
    logger.info("config %s by %s: %s", pending.kind, user.username, pending.summary)
    if wants_json(request):
        return web.json_response(
            {
                "ok": True,
                "version": entry["id"],
                "warnings": applied.warnings,
                "restart_needed": applied.restart_needed,
            }
        )
    raise web.HTTPSeeOther(_with_notice(pending.back, "applied"))


def owners(config: HotlineConfig, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The hotlines a change touched ("" for the deployment's own settings)."""
    found = set()
    for path, _before, after in _changed_paths(old, new):
        data = new if after is not None else old
        found.add(path_owner(config, data, path) or "")
    return sorted(found)


# --- the journal and the history ------------------------------------------------------


def history_dir(config: HotlineConfig) -> Path:
    return config.resolve_path(config.paths.config_history)


def record_change(
    applied: AppliedConfig,
    username: str,
    reason: str,
    summary: str,
    kind: str,
    hotlines: list[str],
) -> dict[str, Any]:
    """Append one line to the journal (mode 0600, in the history folder the
    applier made 0700) and return it."""
    folder = history_dir(applied.config)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    entry = {
        "id": secrets.token_hex(8),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "user": username,
        "reason": reason,
        "summary": summary,
        "kind": kind,
        "previous": applied.backup.name if applied.backup else "",
        "hotlines": hotlines,
    }
    line = json.dumps(entry, ensure_ascii=False) + "\n"
    fd = os.open(folder / JOURNAL, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(line)
    return entry


async def journal_editor_change(request: web.Request, applied: AppliedConfig) -> None:
    """Journal a change made in the YAML editor, so the history lists it and
    its undo works like a form's (the editor asks no reason)."""
    state = state_of(request)
    old_text = ""
    if applied.backup is not None:
        old_text = await asyncio.to_thread(applied.backup.read_text, encoding="utf-8")
    source = applied.config.source
    assert source is not None  # an applied config was read from its file
    new_text = await asyncio.to_thread(source.read_text, encoding="utf-8")
    touched = owners(state.config, _load(old_text), _load(new_text))
    await asyncio.to_thread(
        record_change, applied, user_of(request).username, "", "Trình sửa YAML", "editor", touched
    )


def read_journal(config: HotlineConfig) -> list[dict[str, Any]]:
    """The journal, newest first (a damaged line is skipped, not fatal)."""
    path = history_dir(config) / JOURNAL
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            logger.warning("skipping a damaged line of %s", path)
            continue
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            entries.append(entry)
    entries.reverse()
    return entries


def _visible(user: WebUser, entry: dict[str, Any]) -> bool:
    """Administrators see every change; a supervisor the changes to their
    hotline's items only (every hotline's when they have none set)."""
    if user.role == ADMIN:
        return True
    hotlines = entry.get("hotlines") or [""]
    if user.hotline_id is None:
        return all(hotlines)
    return all(h == user.hotline_id for h in hotlines)


async def history_page(request: web.Request) -> web.StreamResponse:
    """The changes made through the console, newest first, each with "undo"."""
    state = state_of(request)
    user = user_of(request)
    entries = await asyncio.to_thread(read_journal, state.config)
    # The version a change led to is the one the next change replaced (kept
    # as that change's "previous"); the newest change's is the current file.
    for entry in entries:
        entry["restorable"] = False
    for newer, entry in itertools.pairwise(entries):
        entry["restorable"] = bool(newer.get("previous"))
    shown = [e for e in entries if _visible(user, e)][:HISTORY_ROWS]
    for entry in shown:
        try:
            at = datetime.fromisoformat(entry["at"]).astimezone(state.zone)
            entry["at_local"] = at.strftime("%d/%m/%Y %H:%M")
        except (KeyError, ValueError, TypeError):
            entry["at_local"] = ""
    if wants_json(request):
        return web.json_response({"changes": shown})
    return render(
        request,
        "admin_changes.html",
        entries=shown,
        editable=state.applier is not None,
        notice=request.query.get("notice", ""),
    )


async def restore_preview(request: web.Request) -> web.StreamResponse:
    """Preview going back to the version a change replaced (one-step undo), or
    with ``?version=after`` to the version it led to ("restore this
    version"): both through the same preview and apply as any change."""
    state = state_of(request)
    change_id = request.match_info["change_id"]
    after = request.query.get("version") == "after"
    entries = await asyncio.to_thread(read_journal, state.config)
    position = next((i for i, e in enumerate(entries) if e.get("id") == change_id), None)
    if position is None or not _visible(user_of(request), entries[position]):
        return error_page(request, 404, "Not found", N_("There is no such change."))
    entry = entries[position]
    if after:
        # Newest first: the change after this one replaced the version it led to.
        if position == 0:
            return error_page(request, 404, "Not found", N_("That version is the current one."))
        name = str(entries[position - 1].get("previous") or "")
    else:
        name = str(entry.get("previous") or "")
    # The name comes from our own journal, but a journal is a file: stay in the folder.
    if not name or Path(name).name != name or name == JOURNAL:
        return error_page(request, 404, "Not found", N_("That version was not kept."))
    try:
        old_text = await asyncio.to_thread(
            (history_dir(state.config) / name).read_text, encoding="utf-8"
        )
    except OSError:
        return error_page(request, 404, "Not found", N_("That version was not kept."))
    what, who = entry.get("summary", ""), entry.get("user", "")
    english = _language(request) == "en"
    if after:
        summary = (
            f"Restore the version after: {what} ({who})"
            if english
            else f"Khôi phục phiên bản sau thay đổi: {what} ({who})"
        )
    else:
        summary = f"Undo: {what} ({who})" if english else f"Hoàn tác: {what} ({who})"
    return await preview_change(
        request, new_text=old_text, summary=summary, back="/admin/changes", kind="rollback"
    )


ROUTES = [
    Route("GET", "/admin/changes", history_page, WATCHERS, "config_changes"),
    Route("GET", "/api/v1/config/changes", history_page, WATCHERS, "config_changes_api"),
    Route("POST", "/admin/changes/apply", apply_change, WATCHERS, "config_change_apply"),
    Route(
        "POST", "/api/v1/config/changes/apply", apply_change, WATCHERS, "config_change_apply_api"
    ),
    Route(
        "GET",
        "/admin/changes/{change_id}/restore",
        restore_preview,
        WATCHERS,
        "config_change_restore",
    ),
]
