"""Checks that span the file: unique ids, references between sections, menu keys.

Each problem is returned as ``(field path, message)`` so the loader can name
the line it came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from ivr.config.channels import (
    email_channel_problems,
    open311_channel_problems,
    sms_zalo_channel_problems,
)
from ivr.config.cluster import cluster_problems
from ivr.config.destinations import Destination, DestinationKind
from ivr.config.prompt_texts import (
    HOTLINE_PLACEHOLDERS,
    RESERVED_PROMPT_FOLDERS,
    placeholder_problem,
)
from ivr.config.retention import retention_problems
from ivr.config.schema import Area, Hotline, HotlineConfig, Menu
from ivr.config.yaml_lines import FieldPath

Problem = tuple[FieldPath, str]

# A prompt name becomes a file name in an AGI command and the dialplan.
_PROMPT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def find_reference_problems(config: HotlineConfig) -> list[Problem]:
    problems: list[Problem] = []
    problems += _unique_ids(config)
    problems += retention_problems(config)
    area_entries = list(_walk_areas(config.areas, ("areas",)))
    areas_by_code = {area.code: area for area, _ in area_entries}
    area_paths = {area.code: path for area, path in area_entries}
    checker = _DestinationChecker(config, areas_by_code)

    for area, path in area_entries:
        if area.chairman is not None:
            problems += checker.check(area.chairman, (*path, "chairman"), menus=None)
        for index, fallback in enumerate(area.fallbacks):
            problems += checker.check(fallback, (*path, "fallbacks", index), menus=None)
        if area.fallbacks and area.chairman is None:
            problems.append(((*path, "fallbacks"), "fallbacks given but no chairman"))

    for index, department in enumerate(config.departments):
        problems += checker.check(department.target, ("departments", index, "target"), None)

    schedule_ids = set(config.schedules) | {"always"}
    agent_ids = {agent.id for agent in config.agents}
    queue_ids = {queue.id for queue in config.queues}
    phone_ids = {phone.id for phone in config.phones}
    problems += _phone_identity_problems(config)
    for index, agent in enumerate(config.agents):
        if agent.phone not in phone_ids:
            problems.append(
                (("agents", index, "phone"), f"unknown phone {agent.phone!r}{_hint(phone_ids)}")
            )
    for index, queue in enumerate(config.queues):
        if queue.schedule is not None and queue.schedule not in schedule_ids:
            problems.append((("queues", index, "schedule"), f"unknown schedule {queue.schedule!r}"))
        for member_index, member in enumerate(queue.members):
            if member not in agent_ids:
                problems.append(
                    (("queues", index, "members", member_index), f"unknown agent {member!r}")
                )

    problems += _ownership_problems(config)
    problems += _unit_problems(config, areas_by_code)
    problems += email_channel_problems(config)
    problems += sms_zalo_channel_problems(config)
    problems += open311_channel_problems(config)
    problems += cluster_problems(config)

    shift_ids = {shift.id for shift in config.roster.shifts}
    for section in ("assignments", "overrides"):
        for index, entry in enumerate(getattr(config.roster, section)):
            here: FieldPath = ("roster", section, index)
            if entry.shift not in shift_ids:
                problems.append(((*here, "shift"), f"unknown shift {entry.shift!r}"))
            if entry.queue not in queue_ids:
                problems.append(((*here, "queue"), f"unknown queue {entry.queue!r}"))
            for agent_index, agent_id in enumerate(entry.agents):
                if agent_id not in agent_ids:
                    problems.append(((*here, "agents", agent_index), f"unknown agent {agent_id!r}"))

    problems += _calendar_problems(config)

    for index, hotline in enumerate(config.hotlines):
        here = ("hotlines", index)
        menus = set(hotline.menus)
        if hotline.schedule not in schedule_ids:
            problems.append(((*here, "schedule"), f"unknown schedule {hotline.schedule!r}"))
        if hotline.main_menu not in menus:
            problems.append(((*here, "main_menu"), f"unknown menu {hotline.main_menu!r}"))
        problems += checker.check(hotline.out_of_hours, (*here, "out_of_hours"), menus)
        problems += checker.check(
            hotline.failure_destination, (*here, "failure_destination"), menus
        )
        if hotline.failure_destination.kind is not DestinationKind.QUEUE:
            problems.append(
                (
                    (*here, "failure_destination"),
                    "must be a queue (the dialplan sends calls there when all else fails)",
                )
            )
        owned: list[tuple[Destination, FieldPath]] = [
            (hotline.out_of_hours, (*here, "out_of_hours")),
            (hotline.failure_destination, (*here, "failure_destination")),
        ]
        for name, menu in hotline.menus.items():
            menu_path = (*here, "menus", name)
            for key, destination in menu.options.items():
                problems += checker.check(destination, (*menu_path, "options", key), menus)
                owned.append((destination, (*menu_path, "options", key)))
            problems += checker.check(menu.on_invalid, (*menu_path, "on_invalid"), menus)
            problems += checker.check(menu.on_no_input, (*menu_path, "on_no_input"), menus)
            owned += [
                (menu.on_invalid, (*menu_path, "on_invalid")),
                (menu.on_no_input, (*menu_path, "on_no_input")),
            ]
            problems += _menu_key_problems(menu, menu_path, area_paths, config)
        problems += _foreign_queue_problems(config, hotline.id, owned)
        problems += _hotline_prompt_problems(hotline, here, config)
    return problems


def _calendar_problems(config: HotlineConfig) -> list[Problem]:
    """A date listed twice, or both as a day off and a working day, is a typo
    the clerk must resolve: which of the two did the announcement say?"""
    problems: list[Problem] = []
    days_off = {h.date for h in config.holidays}
    for section in ("holidays", "working_days"):
        seen: set[object] = set()
        for index, entry in enumerate(getattr(config, section)):
            here: FieldPath = (section, index, "date")
            if entry.date in seen:
                problems.append((here, f"{entry.date} is listed twice"))
            seen.add(entry.date)
            if section == "working_days" and entry.date in days_off:
                problems.append(
                    (here, f"{entry.date} is also a day off in holidays: keep one of the two")
                )
    return problems


def _hotline_prompt_problems(
    hotline: Hotline, here: FieldPath, config: HotlineConfig
) -> list[Problem]:
    """A hotline's own texts are checked like the catalog's, and its English key
    must not also start a main-menu choice (the greeting's barge-in digit goes to
    the main menu)."""
    problems: list[Problem] = []
    if hotline.id in RESERVED_PROMPT_FOLDERS:
        problems.append(
            ((*here, "id"), f"{hotline.id!r} names a folder of paths.prompts; choose another id")
        )
    languages = [hotline.language]
    if hotline.english_key is not None and "en" not in languages:
        languages.append("en")
    for name, texts in hotline.prompts.items():
        where: FieldPath = (*here, "prompts", name)
        if not _PROMPT_NAME.fullmatch(name):
            problems.append((where, f"prompt name {name!r}: use a-z, 0-9, '-' and '_' only"))
        for language in languages:
            if language not in texts:
                problems.append((where, f"no {language!r} text (the hotline speaks {language})"))
        for language, text in texts.items():
            problem = placeholder_problem(name, text, HOTLINE_PLACEHOLDERS)
            if problem is not None:
                problems.append(((*where, language), problem))
    key = hotline.english_key
    if key is None:
        return problems
    key_path: FieldPath = (*here, "english_key")
    if hotline.language == "en":
        problems.append((key_path, "the hotline already speaks English (language: en)"))
    if len(key) != 1 or key == "#":
        # A key pressed during the greeting stops it at once: only one digit is read.
        problems.append((key_path, f"{key!r}: must be a single key 0-9 or *"))
    main = hotline.menus.get(hotline.main_menu)
    if main is not None:
        clashes = sorted(k for k in menu_keys(main, config) if k.startswith(key[0]))
        if clashes:
            problems.append(
                (
                    key_path,
                    f"key {key!r} also starts main-menu choice "
                    + ", ".join(repr(k) for k in clashes[:5])
                    + f" of menu {hotline.main_menu!r}; pick a key the menu does not use",
                )
            )
    return problems


def _ownership_problems(config: HotlineConfig) -> list[Problem]:
    """Every queue and agent belongs to one hotline (written when there are
    several), and a queue's agents, fixed or rostered, are of its hotline: a
    supervisor of one hotline must never see or steer another's people."""
    problems: list[Problem] = []
    hotline_ids = {hotline.id for hotline in config.hotlines}
    several = len(hotline_ids) > 1
    owners: list[tuple[FieldPath, str, str | None]] = [
        *((("queues", i, "hotline"), q.id, q.hotline) for i, q in enumerate(config.queues)),
        *((("agents", i, "hotline"), a.id, a.hotline) for i, a in enumerate(config.agents)),
    ]
    for here, item_id, owner in owners:
        if owner is None:
            if several:
                problems.append(
                    (here, f"required with several hotlines: which hotline "
                           f"{item_id!r} belongs to{_hint(hotline_ids)}")
                )  # fmt: skip
        elif owner not in hotline_ids:
            problems.append((here, f"unknown hotline {owner!r}{_hint(hotline_ids)}"))
    for index, queue in enumerate(config.queues):
        for member_index, member in enumerate(queue.members):
            problem = _foreign_agent(config, member, queue.id)
            if problem:
                problems.append((("queues", index, "members", member_index), problem))
    for section in ("assignments", "overrides"):
        for index, entry in enumerate(getattr(config.roster, section)):
            for agent_index, agent_id in enumerate(entry.agents):
                problem = _foreign_agent(config, agent_id, entry.queue)
                if problem:
                    problems.append((("roster", section, index, "agents", agent_index), problem))
    return problems


def _unit_problems(config: HotlineConfig, areas_by_code: dict[str, Area]) -> list[Problem]:
    """Responsible units name a known area (a ward committee must: it answers
    for its ward) and a known hotline, and can be told of a forward (an email or
    an SMS number); forwarding deadlines name known topics."""
    problems: list[Problem] = []
    hotline_ids = {hotline.id for hotline in config.hotlines}
    for index, unit in enumerate(config.units):
        here: FieldPath = ("units", index)
        if unit.area is not None and unit.area not in areas_by_code:
            problems.append(((*here, "area"), f"unknown area {unit.area!r}{_hint(areas_by_code)}"))
        if unit.kind == "ward_committee" and unit.area is None:
            problems.append(((*here, "area"), "a ward committee needs the area (ward) it serves"))
        if unit.hotline is not None and unit.hotline not in hotline_ids:
            problems.append(
                ((*here, "hotline"), f"unknown hotline {unit.hotline!r}{_hint(hotline_ids)}")
            )
        if unit.email is None and unit.sms is None:
            problems.append((here, f"unit {unit.code!r} needs an email or an sms number"))
    for hotline_id in config.forwarding.supervisor_emails:
        if hotline_id not in hotline_ids:
            problems.append(
                (("forwarding", "supervisor_emails", hotline_id),
                 f"unknown hotline {hotline_id!r}{_hint(hotline_ids)}")
            )  # fmt: skip
    topics = {topic.code for topic in config.cases.topics}
    for index, rule in enumerate(config.forwarding.by_topic):
        if rule.topic not in topics:
            problems.append(
                (("forwarding", "by_topic", index, "topic"),
                 f"unknown topic {rule.topic!r}{_hint(topics)}")
            )  # fmt: skip
    return problems


def _foreign_agent(config: HotlineConfig, agent_id: str, queue_id: str) -> str | None:
    """Why this agent may not serve this queue, or None (unknown ids and
    missing owners are reported elsewhere)."""
    agent_owner, queue_owner = config.agent_owner(agent_id), config.queue_owner(queue_id)
    if agent_owner is None or queue_owner is None or agent_owner == queue_owner:
        return None
    return (
        f"agent {agent_id!r} works for hotline {agent_owner!r}, "
        f"but queue {queue_id!r} belongs to hotline {queue_owner!r}"
    )


def _foreign_queue_problems(
    config: HotlineConfig, hotline_id: str, owned: list[tuple[Destination, FieldPath]]
) -> list[Problem]:
    """A hotline's menus and fallbacks send callers only to its own queues, and
    promise call-backs only from them (the agent who calls back, and the caller
    id the citizen sees, are that queue's hotline's)."""
    problems: list[Problem] = []
    for destination, path in owned:
        if destination.kind not in (DestinationKind.QUEUE, DestinationKind.CALLBACK):
            continue
        owner = config.queue_owner(destination.argument)
        if owner is not None and owner != hotline_id:
            problems.append(
                (path, f"queue {destination.argument!r} belongs to hotline {owner!r}, "
                       f"not to {hotline_id!r}")
            )  # fmt: skip
    return problems


def menu_keys(menu: Menu, config: HotlineConfig) -> dict[str, Destination]:
    """Every key sequence a menu accepts: options, units' shortcuts, extensions."""
    keys = dict(menu.options)
    parent = config.area(menu.areas_under) if menu.areas_under else None
    if parent is not None:
        for child in parent.children:
            if child.shortcut is not None:
                keys.setdefault(child.shortcut, Destination(DestinationKind.AREA, child.code))
    if menu.include_departments:
        for department in config.departments:
            keys.setdefault(
                department.extension, Destination(DestinationKind.DEPARTMENT, department.code)
            )
    return keys


def _menu_key_problems(
    menu: Menu, menu_path: FieldPath, area_paths: dict[str, FieldPath], config: HotlineConfig
) -> list[Problem]:
    """Duplicate and ambiguous keys of one menu, reported at the later key's line."""
    problems: list[Problem] = []
    owners: dict[str, str] = {}
    for key in menu.options:
        if "#" in key:
            problems.append(((*menu_path, "options", key), "'#' ends input and cannot be a key"))
        owners[key] = f"option {key!r}"
    if menu.include_departments:
        for department in config.departments:
            owner = f"department {department.code!r} (extension {department.extension})"
            if department.extension in owners:
                problems.append(
                    (
                        (*menu_path, "include_departments"),
                        f"extension {department.extension!r} of {owner} is also used by "
                        f"{owners[department.extension]}",
                    )
                )
                continue
            owners[department.extension] = owner
    if menu.areas_under is not None:
        parent = config.area(menu.areas_under)
        if parent is None:
            return [((*menu_path, "areas_under"), f"unknown area {menu.areas_under!r}")]
        for child in parent.children:
            if child.shortcut is None:
                continue
            owner = f"area {child.code!r} ({child.name})"
            if "#" in child.shortcut:
                problems.append(
                    ((*area_paths[child.code], "shortcut"), "'#' ends input and cannot be a key")
                )
                continue
            if child.shortcut in owners:
                problems.append(
                    (
                        (*area_paths[child.code], "shortcut"),
                        f"shortcut {child.shortcut!r} of {owner} is also used by "
                        f"{owners[child.shortcut]} in menu {menu_path[-1]!r}",
                    )
                )
                continue
            owners[child.shortcut] = owner
    if menu.terminator:
        # With '#' any lengths work: a key as long as the longest ends on its
        # last digit, a shorter one on '#' (or the timeout).
        return problems
    # Without a terminator the caller is never told to press '#': the input ends
    # at the longest key's length or at the timeout, so one key must never be
    # the start of another ("1" would swallow "12") and a shorter key would make
    # its caller wait out the timeout.
    lengths = {len(key) for key in owners}
    longest = max(lengths, default=0)
    starts: dict[str, list[str]] = {}
    for key in owners:
        for end in range(1, len(key)):
            if key[:end] in owners:
                starts.setdefault(key[:end], []).append(key)
    if starts:
        clashes = [
            f"{owners[shorter]} is the start of {owners[min(longer)]}"
            + (f" and {len(longer) - 1} more keys" if len(longer) > 1 else "")
            for shorter, longer in sorted(starts.items())
        ]
        more = f" (and {len(clashes) - 3} more)" if len(clashes) > 3 else ""
        shown = "; ".join(clashes[:3]) + more
        problems.append(
            (
                (*menu_path, "terminator"),
                f"ambiguous keys without a terminator: {shown}; "
                "make the keys the same length or set terminator: '#'",
            )
        )
    elif len(lengths) > 1:
        short = sorted(key for key in owners if len(key) < longest)
        shown = ", ".join(owners[key] for key in short[:3])
        more = f" (and {len(short) - 3} more)" if len(short) > 3 else ""
        problems.append(
            (
                (*menu_path, "terminator"),
                f"keys of different lengths without a terminator: the caller who presses "
                f"{shown}{more} waits {menu.timeout_seconds} s (the timeout) for "
                f"{longest} keys; make the keys the same length or set terminator: '#' "
                "(and say '#' in the prompt)",
            )
        )
    return problems


class _DestinationChecker:
    def __init__(self, config: HotlineConfig, areas_by_code: dict[str, Area]) -> None:
        self._config = config
        self._areas = areas_by_code
        self._ids = {
            DestinationKind.QUEUE: {q.id for q in config.queues},
            DestinationKind.PHONE: {p.id for p in config.phones},
            DestinationKind.DEPARTMENT: {d.code for d in config.departments},
        }
        self._trunks = {t.id for t in config.trunks}

    def check(
        self, destination: Destination, path: FieldPath, menus: set[str] | None
    ) -> list[Problem]:
        kind, argument = destination.kind, destination.argument
        if kind in self._ids and argument not in self._ids[kind]:
            return [(path, f"unknown {kind.value} {argument!r}{_hint(self._ids[kind])}")]
        if kind is DestinationKind.AREA:
            area = self._areas.get(argument)
            if area is None:
                return [(path, f"unknown area {argument!r}{_hint(self._areas)}")]
            if area.chairman is None:
                return [(path, f"area {argument!r} ({area.name}) has no chairman to ring")]
        if kind is DestinationKind.CALLBACK:
            # Offered to a caller of the hotline (a menu, its out_of_hours): as a
            # chairman's fallback or a department's target it would promise a
            # call-back to someone who only asked to be put through.
            if menus is None:
                return [(path, "a call-back is offered only in a hotline's menus or out_of_hours")]
            queues = self._ids[DestinationKind.QUEUE]
            if argument not in queues:
                return [(path, f"unknown queue {argument!r}{_hint(queues)}")]
        if kind is DestinationKind.PROMPT and not _PROMPT_NAME.fullmatch(argument):
            return [(path, f"prompt name {argument!r}: use a-z, 0-9, '-' and '_' only")]
        if kind is DestinationKind.MENU:
            if menus is None:
                return [(path, "a menu can only be named inside a hotline's menus")]
            if argument not in menus:
                return [(path, f"unknown menu {argument!r}{_hint(menus)}")]
        if kind is DestinationKind.TEL:
            trunk = destination.tel_trunk
            if trunk is None and not self._trunks:
                return [(path, f"{destination} needs a trunk, and no trunks are configured")]
            if trunk is not None and trunk not in self._trunks:
                return [(path, f"unknown trunk {trunk!r}{_hint(self._trunks)}")]
        return []


def _phone_identity_problems(config: HotlineConfig) -> list[Problem]:
    """Asterisk tells a phone from a caller by the user part of From (the
    phone's id) before the trunk's address: an id that could be a caller's
    number would have the carrier's calls challenged as that phone, and an id
    shared with a trunk would make one endpoint of two."""
    problems: list[Problem] = []
    trunk_ids = {trunk.id for trunk in config.trunks}
    for index, phone in enumerate(config.phones):
        here: FieldPath = ("phones", index, "id")
        if not re.search(r"[a-z]", phone.id):
            problems.append(
                (here, f"phone id {phone.id!r} needs a letter (digits alone look like a number)")
            )
        if phone.id in trunk_ids:
            problems.append((here, f"phone id {phone.id!r} is also a trunk id"))
    return problems


def _unique_ids(config: HotlineConfig) -> list[Problem]:
    problems: list[Problem] = []
    sections: list[tuple[str, Iterable[tuple[FieldPath, str]]]] = [
        ("trunk id", ((("trunks", i, "id"), t.id) for i, t in enumerate(config.trunks))),
        ("phone id", ((("phones", i, "id"), p.id) for i, p in enumerate(config.phones))),
        ("queue id", ((("queues", i, "id"), q.id) for i, q in enumerate(config.queues))),
        ("agent id", ((("agents", i, "id"), a.id) for i, a in enumerate(config.agents))),
        ("hotline id", ((("hotlines", i, "id"), h.id) for i, h in enumerate(config.hotlines))),
        ("unit code", ((("units", i, "code"), u.code) for i, u in enumerate(config.units))),
        (
            "department code",
            ((("departments", i, "code"), d.code) for i, d in enumerate(config.departments)),
        ),
        (
            "area code",
            (((*path, "code"), area.code) for area, path in _walk_areas(config.areas, ("areas",))),
        ),
        (
            "dialled number",
            [
                *(
                    (("hotlines", i, "numbers", j), number)
                    for i, h in enumerate(config.hotlines)
                    for j, number in enumerate(h.numbers)
                ),
                *(
                    (("departments", i, "extension"), d.extension)
                    for i, d in enumerate(config.departments)
                ),
            ],
        ),
        (
            "AMI node id",
            (
                (("asterisk", "ami", "nodes", i, "id"), n.id)
                for i, n in enumerate(config.asterisk.ami.nodes)
            ),
        ),
        (
            "shift id",
            ((("roster", "shifts", i, "id"), s.id) for i, s in enumerate(config.roster.shifts)),
        ),
    ]
    for label, entries in sections:
        seen: set[str] = set()
        for path, value in entries:
            if value in seen:
                problems.append((path, f"duplicate {label} {value!r}"))
            seen.add(value)
    return problems


def _walk_areas(areas: list[Area], path: FieldPath) -> Iterator[tuple[Area, FieldPath]]:
    for index, area in enumerate(areas):
        here = (*path, index)
        yield area, here
        yield from _walk_areas(area.children, (*here, "children"))


def _hint(known: Iterable[str]) -> str:
    names = sorted(known)
    if not names:
        return " (none are configured)"
    shown = ", ".join(repr(n) for n in names[:8])
    more = f" and {len(names) - 8} more" if len(names) > 8 else ""
    return f" (known: {shown}{more})"
