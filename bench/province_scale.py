"""Five years of a busy provincial line in PostgreSQL, and how fast the console reads it.

Loads synthetic history (about 9 million calls, their queue records and
100,000 cases with their histories and some 100,000 forwards to units at
``--scale 1``) into a PostgreSQL database through psycopg's ``COPY``, runs the
statistics roll-up over it as ``hotline serve`` would (ivr/reports/call_rollup.py;
``--no-roll-up``: the page reads the records only), then times, through the
same functions the console calls, with varied parameters and p50/p95 over
repeated runs:

- the statistics page (:func:`ivr.web.statistics_store.statistics`) over two
  weeks, a month, a quarter and a year, for the whole deployment and for one
  hotline's supervisor;
- the monthly on-time report (:func:`ivr.web.statistics_store.monthly_report`)
  per unit, ward and topic;
- case search by the caller's words (:func:`ivr.web.store.search_cases` with ``q``);
- the agent's screen-pop (:func:`ivr.web.store.caller_history`, what
  ``/agent/pop`` reads through :func:`ivr.web.reads.readable_history`).

The goal is each under 1 s at p95 on the project's 2-core machine. Times are
printed, never asserted. ``--explain`` prints PostgreSQL's plan
(``EXPLAIN ANALYZE``) of the heaviest query of each kind.

The data follows examples/combined.yaml (four hotlines, Hà Nội's 126 units,
the shared topics): calls by weekday and hour of day, a few heavy repeat
callers and many regular ones among mostly one-time callers, withheld numbers,
outcomes and queue waits, case texts in Vietnamese built from phrases a
citizen says, statuses and closing dates consistent with each case's deadline.

Facts this relies on:
- Debian's PostgreSQL server binaries under /usr/lib/postgresql/<ver>/bin,
  started the way the tests start theirs (tests/rig/postgres.py), unless
  ``--url`` names a database; ``pg_trgm`` ships with Debian's server package
  (postgresql-contrib is part of it), and migration 0012 creates it.
- psycopg 3's ``cursor.copy()`` with ``write_row`` (text format; the server
  parses the values).

    .venv/bin/python bench/province_scale.py --scale 0.01          # development
    .venv/bin/python bench/province_scale.py                       # the full five years
    .venv/bin/python bench/province_scale.py --url postgresql+psycopg://… --skip-load
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ivr.cases.calendar import WorkingCalendar
from ivr.config.loader import load_config
from ivr.config.schema import HotlineConfig, iter_areas

logger = logging.getLogger(__name__)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "combined.yaml"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
# The last day of the history: fixed, so two runs load the same data.
END = date(2026, 11, 30)
YEARS = 5
FULL_CALLS = 9_000_000
FULL_CASES = 100_000

# Shares of the calls; a provincial 1022 line takes most.
HOTLINE_SHARE = {
    "tong-dai-1022": 0.55,
    "ha-noi-hcc": 0.2,
    "bac-tu-liem-2026": 0.15,
    "thanh-xuan": 0.1,
}
# Calls per hour of the day (local time): office hours dominate, the 1022
# line's night is quiet but not silent.
HOUR_WEIGHT = [1, 1, 1, 1, 1, 2, 4, 9, 14, 15, 14, 12, 7, 8, 14, 14, 13, 10, 6, 4, 3, 2, 2, 1]
WEEKDAY_WEIGHT = [1.1, 1.0, 1.0, 1.0, 0.95, 0.45, 0.3]  # Monday … Sunday
# calls.outcome, with queue_calls following from it.
OUTCOMES = {
    "answered": 0.72,
    "abandoned_in_queue": 0.09,
    "abandoned_in_ivr": 0.08,
    "voicemail": 0.03,
    "no_answer": 0.03,
    "abandoned": 0.03,
    "busy": 0.01,
    "congestion": 0.005,
    "interrupted": 0.005,
}
WITHHELD_SHARE = 0.03
# Callers: a few numbers call thousands of times (the screen-pop's worst
# case), regulars call every month or so, most call once or twice.
HEAVY_CALLERS = 12
HEAVY_SHARE = 0.004  # of all calls, per heavy caller … about 36,000 each at full scale
REGULAR_SHARE = 0.3  # of all calls, from ``calls / 150`` regular numbers
MOBILE_PREFIXES = ("90", "91", "93", "94", "96", "97", "98", "32", "33", "35", "37", "39",
                   "70", "76", "77", "79", "81", "83", "84", "85", "86", "88", "89")  # fmt: skip

TOPIC_WEIGHT = {
    "hien-truong": 0.34,
    "thu-tuc": 0.24,
    "ho-so": 0.16,
    "can-bo": 0.08,
    "khan-cap": 0.04,
    "khac": 0.14,
}
SEVERITY_WEIGHT = {"normal": 0.85, "complex": 0.1, "urgent": 0.05}
DEPARTMENTS = ("so-xay-dung", "so-tai-nguyen-moi-truong", "so-giao-thong-van-tai",
               "cong-an-thanh-pho", "so-tu-phap", "so-y-te")  # fmt: skip

# What citizens say, per topic: a phrase, then a place. Words repeat across
# cases as they do in life, so a search by "rác" finds many and one by a
# street's name few.
PHRASES = {
    "hien-truong": (
        "Rác thải tập kết bừa bãi, bốc mùi hôi thối",
        "Đèn đường bị hỏng, buổi tối rất tối và nguy hiểm",
        "Cống thoát nước bị tắc, ngập úng sau mưa",
        "Lấn chiếm vỉa hè để kinh doanh, người đi bộ phải xuống lòng đường",
        "Xây dựng không phép, đổ vật liệu ra đường",
        "Tiếng ồn karaoke kéo dài sau 22 giờ",
        "Cây xanh bị gãy đổ chắn ngang đường",
        "Ổ gà lớn trên mặt đường, xe máy bị ngã",
        "Đốt rơm rạ gây khói bụi ô nhiễm",
        "Nước sinh hoạt bị đục, có mùi lạ",
    ),
    "thu-tuc": (
        "Hỏi thủ tục cấp căn cước cho con",
        "Hỏi hồ sơ đăng ký khai sinh cần giấy tờ gì",
        "Hỏi thủ tục chuyển nhượng quyền sử dụng đất",
        "Hỏi lệ phí cấp giấy phép xây dựng nhà ở riêng lẻ",
        "Hỏi thủ tục đăng ký thường trú",
        "Hỏi thời gian làm việc của bộ phận một cửa",
        "Hỏi thủ tục đăng ký kết hôn",
    ),
    "ho-so": (
        "Hồ sơ cấp giấy chứng nhận quyền sử dụng đất bị chậm so với giấy hẹn",
        "Nộp hồ sơ trực tuyến nhưng chưa nhận được phản hồi",
        "Hồ sơ đăng ký hộ kinh doanh bị trả lại không rõ lý do",
        "Đề nghị kiểm tra tiến độ giải quyết hồ sơ chứng thực",
    ),
    "can-bo": (
        "Cán bộ tiếp dân có thái độ không đúng mực",
        "Cán bộ yêu cầu bổ sung giấy tờ ngoài quy định",
        "Phản ánh cán bộ đến muộn, người dân phải chờ lâu",
    ),
    "khan-cap": (
        "Cháy nhà dân, đề nghị hỗ trợ khẩn cấp",
        "Tai nạn giao thông có người bị thương",
        "Người bị ngất trên phố cần cấp cứu",
    ),
    "khac": (
        "Góp ý về dịch vụ công trực tuyến",
        "Đề nghị bố trí thêm chỗ đỗ xe trước trụ sở",
        "Cảm ơn cán bộ phường đã hỗ trợ nhiệt tình",
        "Hỏi số điện thoại của trạm y tế",
    ),
}
STREETS = ("Phạm Văn Đồng", "Hoàng Quốc Việt", "Nguyễn Trãi", "Giải Phóng", "Láng Hạ",
           "Trần Duy Hưng", "Kim Mã", "Cầu Giấy", "Xuân Thủy", "Hồ Tùng Mậu", "Lê Văn Lương",
           "Tây Sơn", "Minh Khai", "Nguyễn Văn Cừ", "Tam Trinh", "Quang Trung", "Tố Hữu",
           "Đại Mỗ", "Phú Diễn", "Cổ Nhuế", "Văn Tiến Dũng", "Đông Ngạc", "Thượng Cát")  # fmt: skip
PLACE = ("tại ngõ {n} đường {street}", "trước số nhà {n} phố {street}",
         "đoạn gần chợ {ward}", "khu tập thể {ward}, tổ dân phố số {n}",
         "ở {ward}")  # fmt: skip


@dataclass
class Population:
    """What the generator draws from: the config's hotlines, queues, agents
    and wards, and the callers' numbers."""

    hotlines: list[str]
    hotline_weights: list[float]
    numbers: dict[str, list[str]]  # hotline id → dialled numbers
    queues: dict[str, list[str]]  # hotline id → its queues
    agents: dict[str, list[tuple[str, str]]]  # hotline id → (agent id, phone)
    wards: list[tuple[str, str]]  # (code, name)
    units: dict[str, list[str]]  # hotline id → the units it forwards to
    ward_weights: list[float]
    calendar: WorkingCalendar
    working_days: Callable[[str, str | None, str], int]

    @classmethod
    def of(cls, config: HotlineConfig) -> Population:
        hotlines = [h.id for h in config.hotlines]
        # Leaf units (wards and communes), the ones calls and cases name.
        wards = [(a.code, a.name) for a in iter_areas(config.areas) if not a.children]
        rng = random.Random(7)
        # Some wards are much busier than others (a city centre, a new town).
        weights = [rng.paretovariate(1.5) for _ in wards]
        return cls(
            hotlines=hotlines,
            hotline_weights=[HOTLINE_SHARE.get(h, 0.05) for h in hotlines],
            numbers={h.id: [n for n in h.numbers if len(n) > 4] or h.numbers
                     for h in config.hotlines},
            queues={h: [q.id for q in config.queues if config.queue_owner(q.id) == h]
                    for h in hotlines},
            agents={h: [(a.id, a.phone) for a in config.agents
                        if config.agent_owner(a.id) == h] for h in hotlines},
            wards=wards,
            # The config's units of the hotline, else (the example names few)
            # the wards' committees and the city's departments, as cases do.
            units={h: [u.code for u in config.units_for(h)]
                   or [*(code for code, _ in wards), *DEPARTMENTS] for h in hotlines},
            ward_weights=weights,
            calendar=WorkingCalendar(h.date for h in config.holidays),
            working_days=config.cases.working_days_for,
        )  # fmt: skip


@dataclass
class Callers:
    """Caller numbers by call index: heavy, regular, occasional, withheld."""

    calls: int
    rng: random.Random
    regulars: int = 0
    occasional: int = 0
    heavy: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.regulars = max(self.calls // 150, 1)
        # Most one-time callers are distinct; some of them call twice.
        self.occasional = max(int(self.calls * 0.55), 1)
        self.heavy = [self.number(n) for n in range(HEAVY_CALLERS)]

    @staticmethod
    def number(index: int) -> str:
        prefix = MOBILE_PREFIXES[index % len(MOBILE_PREFIXES)]
        return f"+84{prefix}{index // len(MOBILE_PREFIXES):07d}"

    def draw(self) -> str | None:
        u = self.rng.random()
        if u < WITHHELD_SHARE:
            return None
        u -= WITHHELD_SHARE
        if u < HEAVY_SHARE * HEAVY_CALLERS:
            return self.heavy[int(u / HEAVY_SHARE)]
        u -= HEAVY_SHARE * HEAVY_CALLERS
        if u < REGULAR_SHARE:
            return self.number(HEAVY_CALLERS + self.rng.randrange(self.regulars))
        return self.number(HEAVY_CALLERS + self.regulars + self.rng.randrange(self.occasional))


def _weighted(rng: random.Random, weights: dict[str, float]) -> Callable[[], str]:
    names, cumulative = list(weights), []
    total = 0.0
    for name in names:
        total += weights[name]
        cumulative.append(total)

    def pick() -> str:
        return rng.choices(names, cum_weights=cumulative)[0]

    return pick


def days_of(end: date, years: int) -> list[date]:
    start = end.replace(year=end.year - years) + timedelta(days=1)
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def calls_per_day(days: list[date], total: int, rng: random.Random) -> list[int]:
    """``total`` calls spread over ``days`` by weekday, with slow growth over
    the years and a little noise; sums exactly to ``total``."""
    weights = [
        WEEKDAY_WEIGHT[d.weekday()] * (0.8 + 0.4 * n / len(days)) * rng.uniform(0.85, 1.15)
        for n, d in enumerate(days)
    ]
    scale = total / sum(weights)
    counts = [int(w * scale) for w in weights]
    for n in rng.sample(range(len(days)), total - sum(counts)):
        counts[n] += 1
    return counts


CALL_COLUMNS = ("uniqueid", "linkedid", "hotline_id", "channel", "caller_number", "caller_raw",
                "caller_withheld", "dialed_number", "keys_pressed", "area_code", "route_kind",
                "route_target", "last_step", "started_at", "answered_at", "ended_at",
                "answered_by", "dial_status", "outcome", "satisfaction", "notes",
                "previous_call_at", "previous_call_anywhere_at")  # fmt: skip
QUEUE_COLUMNS = ("node", "uniqueid", "linkedid", "caller_id", "first_queue", "queue",
                 "queues_visited", "shift_id", "joined_at", "answered_at", "ended_at", "outcome",
                 "wait_seconds", "talk_seconds", "agent_interface", "agent_id",
                 "rings_unanswered")  # fmt: skip
CASE_COLUMNS = ("id", "code", "channel", "hotline_id", "caller_number", "caller_name",
                "area_code", "topic", "severity", "summary", "transcript", "status",
                "rejection_reason", "responsible_unit", "answer", "received_at", "due_date",
                "updated_at", "closed_at", "call_uniqueid", "legal_hold", "legal_hold_reason",
                "erased_at", "satisfaction")  # fmt: skip
HISTORY_COLUMNS = ("case_id", "at", "actor", "action", "from_status", "to_status", "note")
FORWARD_COLUMNS = ("id", "case_id", "unit_code", "hotline_id", "sent_at", "sent_by", "due_date",
                   "status", "share_transcript", "share_recording", "answer", "answered_at",
                   "answered_by", "extension_days_requested", "extension_reason", "note",
                   "reminded_for", "escalated_for")  # fmt: skip
FORWARD_EVENT_COLUMNS = ("forward_id", "at", "actor", "action", "status_from", "status_to", "note")
# Forwarded cases: most go to one unit, some to two or three (1.5 on average).
FORWARDED_SHARE = 0.7
UNITS_PER_FORWARD = {1: 0.6, 2: 0.3, 3: 0.1}
# What became of a forward: answered (on time or late), returned as not the
# unit's, else still owed.
FORWARD_ON_TIME, FORWARD_LATE, FORWARD_RETURNED = 0.76, 0.12, 0.06


@dataclass
class History:
    """Rows for the tables, produced lazily (the full scale does not fit a list)."""

    # Each call with its queue record (None when it never reached a queue).
    calls: Iterator[tuple[tuple[Any, ...], tuple[Any, ...] | None]]
    cases: list[tuple[Any, ...]]
    case_history: list[tuple[Any, ...]]
    # The calls a case was opened from: (uniqueid, hotline, number, started, area).
    case_calls: list[tuple[str, str, str | None, datetime, str | None]]
    forwards: list[tuple[Any, ...]] = field(default_factory=list)
    forward_events: list[tuple[Any, ...]] = field(default_factory=list)


def generate(
    population: Population, scale: float = 1.0, end: date = END, seed: int = 13
) -> History:
    """The synthetic history at ``scale`` (1.0: five years, 9 M calls, 100 k cases).

    ``calls`` is a generator of (call, queue record); it picks the calls that
    become cases as it goes, and the case rows are made when it is exhausted
    (iterate ``calls`` before reading the others)."""
    rng = random.Random(seed)
    total_calls = max(int(FULL_CALLS * scale), 100)
    total_cases = max(int(FULL_CASES * scale), 20)
    days = days_of(end, YEARS)
    history = History(iter(()), [], [], [])
    history.calls = _calls(population, rng, days, total_calls, total_cases, history)
    return history


def _calls(
    population: Population,
    rng: random.Random,
    days: list[date],
    total_calls: int,
    total_cases: int,
    history: History,
) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...] | None]]:
    callers = Callers(total_calls, rng)
    outcome = _weighted(rng, OUTCOMES)
    hour_cumulative = []
    acc = 0
    for w in HOUR_WEIGHT:
        acc += w
        hour_cumulative.append(acc)
    hotline_cumulative = []
    acc_f = 0.0
    for w in population.hotline_weights:
        acc_f += w
        hotline_cumulative.append(acc_f)
    ward_cumulative = []
    acc_f = 0.0
    for w in population.ward_weights:
        acc_f += w
        ward_cumulative.append(acc_f)
    # An answered call becomes a case with this chance: a few too many, the
    # surplus is dropped evenly over the years at the end.
    case_chance = total_cases / (total_calls * OUTCOMES["answered"]) * 1.1
    serial = 0
    # Each number's previous call to the hotline and to any (calls come in
    # time order): what the call log records (ivr/db/call_chain.py).
    previous: dict[tuple[str, str], datetime] = {}
    previous_anywhere: dict[str, datetime] = {}
    for day, count in zip(days, calls_per_day(days, total_calls, rng), strict=True):
        midnight = datetime(day.year, day.month, day.day, tzinfo=ZONE).astimezone(UTC)
        seconds = sorted(
            rng.choices(range(24), cum_weights=hour_cumulative)[0] * 3600 + rng.randrange(3600)
            for _ in range(count)
        )
        for second in seconds:
            serial += 1
            started = midnight + timedelta(seconds=second)
            hotline = rng.choices(population.hotlines, cum_weights=hotline_cumulative)[0]
            number = callers.draw()
            uniqueid = f"{int(started.timestamp())}.{serial}"
            result = outcome()
            queues = population.queues[hotline]
            queue = queues[0] if rng.random() < 0.7 or len(queues) == 1 else rng.choice(queues)
            area = (
                rng.choices(population.wards, cum_weights=ward_cumulative)[0][0]
                if rng.random() < 0.6
                else None
            )
            answered_at = ended_at = None
            answered_by = None
            wait = rng.expovariate(1 / 25)
            talk = rng.expovariate(1 / 180) + 20
            if result == "answered":
                agent_id, phone = rng.choice(population.agents[hotline] or [("a", "a")])
                answered_at = started + timedelta(seconds=15 + wait)
                ended_at = answered_at + timedelta(seconds=talk)
                answered_by = f"PJSIP/{phone}"
            else:
                agent_id = None
                ended_at = started + timedelta(seconds=10 + wait)
            queue_row = None
            if result in ("answered", "abandoned_in_queue"):
                queue_row = ("asterisk-1", uniqueid, uniqueid, number or "", queue, queue, 1, None,
                     started + timedelta(seconds=15), answered_at, ended_at,
                     "answered" if answered_at else "abandoned", round(wait, 1),
                     round(talk, 1) if answered_at else None, answered_by, agent_id,
                     int(wait // 20))  # fmt: skip
                if answered_at and rng.random() < case_chance:
                    history.case_calls.append((uniqueid, hotline, number, started, area))
            dialled = rng.choice(population.numbers[hotline])
            before = before_anywhere = None
            if number is not None:
                before = previous.get((hotline, number))
                before_anywhere = previous_anywhere.get(number)
                previous[hotline, number] = previous_anywhere[number] = started
            yield (
                (uniqueid, uniqueid, hotline, f"PJSIP/trunk-{serial:08x}", number,
                (number or "").replace("+84", "0"), number is None, dialled,
                "1" if area is None else "2", area, "queue", queue, "queue", started,
                answered_at, ended_at, answered_by, "ANSWER" if answered_at else None, result,
                rng.choice((1, 2, 3, None, None)) if answered_at else None, "", before,
                before_anywhere),
                queue_row,
            )  # fmt: skip
    _cases(population, rng, days[-1], total_cases, history)


def summary_text(rng: random.Random, topic: str, ward_name: str) -> str:
    """What the official wrote down of the citizen's words."""
    phrase = rng.choice(PHRASES[topic])
    place = rng.choice(PLACE).format(n=rng.randrange(1, 300), street=rng.choice(STREETS),
                                     ward=ward_name)  # fmt: skip
    return f"{phrase} {place}."


def _cases(
    population: Population, rng: random.Random, last_day: date, total: int, history: History
) -> None:
    topic_of = _weighted(rng, TOPIC_WEIGHT)
    severity_of = _weighted(rng, SEVERITY_WEIGHT)
    ward_names = dict(population.wards)
    ward_codes = [code for code, _ in population.wards]
    # Drop the surplus evenly so the count is as asked, in time order.
    picked = history.case_calls
    if len(picked) > total:
        keep = sorted(rng.sample(range(len(picked)), total))
        picked = [picked[n] for n in keep]
    history.case_calls = picked
    for case_id, (uniqueid, hotline, number, started, area) in enumerate(picked, start=1):
        topic = topic_of()
        severity = "urgent" if topic == "khan-cap" else severity_of()
        area = area or rng.choices(ward_codes, weights=population.ward_weights)[0]
        received = started + timedelta(minutes=rng.randrange(2, 15))
        local_day = received.astimezone(ZONE).date()
        due = population.calendar.add_working_days(
            local_day, population.working_days(hotline, topic, severity)
        )
        unit = area if topic in ("hien-truong", "khan-cap") else rng.choice(DEPARTMENTS)
        # Most cases are answered within the deadline, some late, a few
        # rejected; those received lately are still open.
        span_days = (due - local_day).days or 1
        closes_after = timedelta(
            days=rng.uniform(0.2, span_days) if rng.random() < 0.82 else
            rng.uniform(span_days, span_days * 2.5)
        )  # fmt: skip
        closed_at = received + closes_after
        if closed_at.astimezone(ZONE).date() > last_day or rng.random() < 0.01:
            closed_at = None  # still open (1 % forgotten for years)
        status = (
            ("rejected" if rng.random() < 0.04 else "closed")
            if closed_at
            else rng.choice(("received", "assigned", "in_progress"))
        )
        summary = summary_text(rng, topic, ward_names.get(area, area))
        code = f"{case_id:08d}"
        updated = closed_at or received
        history.cases.append(
            (case_id, code, "phone", hotline, number, "", area, topic, severity, summary, "",
             status, "", unit, "Đã trả lời công dân." if closed_at else "", received, due,
             updated, closed_at, uniqueid, False, "", None, None)
        )  # fmt: skip
        history.case_history.append((case_id, received, "agent", "opened", None, "received", ""))
        if status != "received":
            moved = received + (closes_after / 3 if closed_at else timedelta(hours=2))
            history.case_history.append(
                (case_id, moved, "agent", "status", "received", "in_progress", "")
            )
        if closed_at:
            history.case_history.append(
                (case_id, closed_at, "supervisor", "status", "in_progress", status, "")
            )
        if status != "rejected" and rng.random() < FORWARDED_SHARE:
            _forwards(population, rng, last_day, history, case_id, hotline, unit, received,
                      population.working_days(hotline, topic, severity))  # fmt: skip


def _forwards(
    population: Population,
    rng: random.Random,
    last_day: date,
    history: History,
    case_id: int,
    hotline: str,
    unit: str,
    received: datetime,
    working_days: int,
) -> None:
    """A case's forwards: to one unit or a few, each with its own deadline and
    fate (answered on time or late, returned, or still owed)."""
    units = population.units[hotline]
    if not units:
        return
    count = rng.choices(list(UNITS_PER_FORWARD), weights=list(UNITS_PER_FORWARD.values()))[0]
    chosen = [unit] if unit in units else []
    chosen += rng.sample(units, min(count, len(units)))
    for code in list(dict.fromkeys(chosen))[:count]:
        forward_id = len(history.forwards) + 1
        sent = received + timedelta(minutes=rng.randrange(10, 1440))
        sent_day = sent.astimezone(ZONE).date()
        if sent_day > last_day:
            continue
        due = population.calendar.add_working_days(sent_day, max(working_days - 2, 3))
        span = max((due - sent_day).days, 1)
        u = rng.random()
        status, answered_at, answered_by, answer = "in_progress", None, None, ""
        event: tuple[datetime, str] | None = None
        if u < FORWARD_ON_TIME + FORWARD_LATE:
            late = u >= FORWARD_ON_TIME
            days = rng.uniform(span + 1, span * 2 + 2) if late else rng.uniform(0.1, span)
            moment = sent + timedelta(days=days)
            if moment.astimezone(ZONE).date() <= last_day:
                status, answered_at, answered_by = "answered", moment, f"{code}-vanthu"
                answer = "Đơn vị đã kiểm tra và xử lý theo quy định."
                event = (moment, "answered")
        elif u < FORWARD_ON_TIME + FORWARD_LATE + FORWARD_RETURNED:
            moment = sent + timedelta(days=rng.uniform(0.1, 3))
            if moment.astimezone(ZONE).date() <= last_day:
                status, event = "returned", (moment, "returned")
        if status == "in_progress":
            status = rng.choice(("sent", "received", "in_progress", "extension_requested"))
        history.forwards.append(
            (forward_id, case_id, code, hotline, sent, "agent", due, status, False, False,
             answer, answered_at, answered_by, None, "", "", None, None)
        )  # fmt: skip
        history.forward_events.append((forward_id, sent, "agent", "sent", None, "sent", ""))
        if event is not None:
            history.forward_events.append(
                (forward_id, event[0], f"{code}-vanthu", "status", "in_progress", event[1], "")
            )


# --- the database ---------------------------------------------------------------


def load(url: str, history: History, batch_log: int = 1_000_000) -> dict[str, int]:
    """COPY the history into ``url``'s tables (schema already migrated)."""
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    counts: dict[str, int] = {}
    # Calls and their queue records stream side by side, one COPY on each of
    # two connections: neither list would fit in memory at full scale.
    with psycopg.connect(dsn) as connection, psycopg.connect(dsn) as queue_connection:
        started = time.perf_counter()
        with connection.cursor() as cursor, queue_connection.cursor() as queue_cursor:
            with (
                cursor.copy(f"COPY calls ({', '.join(CALL_COLUMNS)}) FROM STDIN") as copy,
                queue_cursor.copy(
                    f"COPY queue_calls ({', '.join(QUEUE_COLUMNS)}) FROM STDIN"
                ) as queue_copy,
            ):
                n = queued = 0
                for row, queue_row in history.calls:
                    copy.write_row(row)
                    if queue_row is not None:
                        queue_copy.write_row(queue_row)
                        queued += 1
                    n += 1
                    if n % batch_log == 0:
                        logger.info("%d calls (%.0f s)", n, time.perf_counter() - started)
            counts["calls"], counts["queue_calls"] = n, queued
            queue_connection.commit()
            for table, columns, rows in (
                ("cases", CASE_COLUMNS, history.cases),
                ("case_history", HISTORY_COLUMNS, history.case_history),
                ("case_forwards", FORWARD_COLUMNS, history.forwards),
                ("forward_events", FORWARD_EVENT_COLUMNS, history.forward_events),
            ):
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                counts[table] = len(rows)
            cursor.execute("SELECT setval('cases_id_seq', (SELECT max(id) FROM cases))")
            if history.forwards:
                cursor.execute(
                    "SELECT setval('case_forwards_id_seq', (SELECT max(id) FROM case_forwards))"
                )
        connection.commit()
        logger.info("loaded %s in %.0f s", counts, time.perf_counter() - started)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
    return counts


def roll_up_history(url: str) -> str:
    """The statistics roll-up's first run over the whole history, as ``hotline
    serve`` does it at start (ivr/reports/call_rollup.py), then a second run
    (what every hour costs: the last days and the recent days' counts)."""
    import psycopg

    from ivr.db.engine import make_engine, make_session_factory
    from ivr.reports.call_rollup import roll_up

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    now = datetime.combine(END + timedelta(days=1), datetime.min.time(), ZONE) + timedelta(hours=3)
    started = time.perf_counter()
    days = roll_up(sessions, now)
    first = time.perf_counter() - started
    started = time.perf_counter()
    again = roll_up(sessions, now + timedelta(hours=1))
    second = time.perf_counter() - started
    engine.dispose()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as connection:  # fmt: skip
        connection.execute("VACUUM ANALYZE rolled_days, call_day_counts, queue_day_counts")
    return (
        f"roll-up: {days} days in {first:.0f} s at first; an hourly run re-rolled {again} "
        f"in {second:.1f} s"
    )


# --- timing ----------------------------------------------------------------------


@dataclass
class Timing:
    name: str
    seconds: list[float] = field(default_factory=list)

    def percentile(self, share: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]

    def line(self) -> str:
        return (
            f"{self.name:<44} runs {len(self.seconds):>3}  p50 {self.percentile(0.5):7.3f} s"
            f"  p95 {self.percentile(0.95):7.3f} s  max {max(self.seconds):7.3f} s"
        )


def timed(timing: Timing, work: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = work()
    timing.seconds.append(time.perf_counter() - start)
    return result


def run_timings(url: str, config: HotlineConfig, rounds: int, explain: bool) -> list[Timing]:
    """Each reading the console does, with varied parameters, ``rounds`` times."""
    from ivr.db.engine import make_engine, make_session_factory
    from ivr.web import statistics_store, store
    from ivr.web.access import AccessScope

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    rng = random.Random(99)
    days = days_of(END, YEARS)
    supervisor = AccessScope("giamsat", "supervisor", hotline_id="tong-dai-1022")
    scopes: list[tuple[str, Any]] = [("all", None), ("hotline", supervisor)]
    timings: list[Timing] = []

    # The statistics page: the default two weeks and longer periods, ending
    # anywhere in the five years; the whole deployment and one hotline.
    for label, length in (("2 weeks", 14), ("month", 31), ("quarter", 92), ("year", 366)):
        for who, scope in scopes:
            timing = Timing(f"statistics page, {label}, {who}")
            for _ in range(rounds):
                day_to = rng.choice(days[length:])
                hotline = (
                    None
                    if scope is None
                    else (scope.hotline_id, [q.id for q in config.queues
                                             if config.queue_owner(q.id) == scope.hotline_id])
                )  # fmt: skip
                timed(timing, lambda d=day_to, h=hotline, n=length: statistics_store.statistics(
                    sessions, d - timedelta(days=n - 1), d, ZONE, h))  # fmt: skip
            timings.append(timing)

    # The monthly on-time report (per unit, ward and topic).
    months = sorted({(d.year, d.month) for d in days})
    for who, scope in scopes:
        timing = Timing(f"monthly on-time report, {who}")
        for _ in range(rounds):
            year, month = rng.choice(months)
            hotline_id = None if scope is None else scope.hotline_id
            timed(timing, lambda y=year, m=month, h=hotline_id: statistics_store.monthly_report(
                sessions, y, m, ZONE, hotline_id=h, today=END))  # fmt: skip
        timings.append(timing)

    # Case search by the caller's words: frequent, middling, rare and absent
    # words, alone or with a period, the whole deployment or one hotline.
    words = ("rác", "đèn đường", "ngập úng", "Hoàng Quốc Việt", "căn cước", "karaoke",
             "thái độ", "Văn Tiến Dũng", "không có từ này", "chợ Phường Tây Mỗ")  # fmt: skip
    for who, scope in scopes:
        timing = Timing(f"case search by words, {who}")
        for _ in range(rounds):
            word = rng.choice(words)
            filters = store.Filters(q=word)
            if rng.random() < 0.3:
                filters.day_to = rng.choice(days)
                filters.day_from = filters.day_to - timedelta(days=90)
            timed(timing, lambda f=filters, s=scope: store.search_cases(
                sessions, f, ZONE, scope=s))  # fmt: skip
        timings.append(timing)

    # The screen-pop: a heavy caller, regulars, one-time callers, unknown numbers.
    callers = Callers(FULL_CALLS, random.Random(1))
    numbers = [
        *callers.heavy[:3],
        *(Callers.number(HEAVY_CALLERS + n) for n in range(0, 400, 37)),
        *(Callers.number(HEAVY_CALLERS + 60_000 + n) for n in range(0, 9000, 997)),
        "+84999999999",
    ]
    agent = next(a for a in config.agents if config.agent_owner(a.id) == "tong-dai-1022")
    agent_scope = AccessScope(
        "dtv", "agent", agent_id=agent.id, phone_interface=f"PJSIP/{agent.phone}",
        hotline_id="tong-dai-1022",
    )  # fmt: skip
    for who, scope in [*scopes, ("agent", agent_scope)]:
        timing = Timing(f"screen-pop caller history, {who}")
        for _ in range(rounds):
            number = rng.choice(numbers)
            timed(timing, lambda n=number, s=scope: store.caller_history(
                sessions, n, "", scope=s))  # fmt: skip
        timings.append(timing)

    if explain:
        print_plans(sessions, config)
    engine.dispose()
    return timings


def print_plans(sessions: Any, config: HotlineConfig) -> None:
    """PostgreSQL's plans of the heaviest query of each kind (``--explain``)."""
    from sqlalchemy import text

    from ivr.reports.call_rollup import split_period
    from ivr.web import statistics_store, store

    day_to = END - timedelta(days=200)
    day_from = day_to - timedelta(days=365)
    start, end = statistics_store._period_bounds(day_from, day_to, ZONE)
    with sessions() as session:
        split = split_period(session, start, end)
    hotline = ("tong-dai-1022", [q.id for q in config.queues
                                 if config.queue_owner(q.id) == "tong-dai-1022"])  # fmt: skip
    queries = {
        "search 'đèn đường'": store.case_search_query(store.Filters(q="đèn đường"), ZONE),
        "search 'Văn Tiến Dũng'": store.case_search_query(store.Filters(q="Văn Tiến Dũng"), ZONE),
        "screen-pop calls of a heavy caller": store.caller_calls_query(Callers.number(0), "", 10),
        **{
            f"statistics (year): {name}": query
            for name, query in statistics_store.statistics_queries(
                day_from, day_to, ZONE, None, split=split
            ).items()
        },
        "statistics (year, one hotline): distinct_callers": statistics_store.statistics_queries(
            day_from, day_to, ZONE, hotline, split=split
        )["distinct_callers"],
    }
    with sessions() as session:
        for name, query in queries.items():
            compiled = query.compile(
                dialect=session.bind.dialect, compile_kwargs={"literal_binds": True}
            )
            plan = session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}")).scalars()
            print(f"\n--- {name}\n" + "\n".join(plan))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="share of five years' history (1.0: 9 M calls, 100 k cases)",
    )
    parser.add_argument("--url", help="an empty PostgreSQL database (default: start one)")
    parser.add_argument("--skip-load", action="store_true", help="time what --url holds")
    parser.add_argument("--rounds", type=int, default=20, help="runs per measurement")
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    parser.add_argument("--keep", action="store_true", help="leave the server running")
    parser.add_argument(
        "--no-roll-up", action="store_true", help="time without the daily roll-up (the records)"
    )
    args = parser.parse_args()  # fmt: skip
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = load_config(EXAMPLE)
    server = None
    url = args.url
    if url is None:
        from tests.rig.postgres import PostgresServer

        server = PostgresServer()
        server.start()
        url = server.new_database()
        logger.info("PostgreSQL at %s (data in %s)", url, server.root)
    try:
        if not args.skip_load:
            from ivr.db.migrate import upgrade

            upgrade(url)
            started = time.perf_counter()
            counts = load(url, generate(Population.of(config), args.scale))
            print(f"loaded {counts} in {time.perf_counter() - started:.0f} s")
        if not args.no_roll_up:
            print(roll_up_history(url))
        timings = run_timings(url, config, args.rounds, args.explain)
        print(f"\nscale {args.scale}, {args.rounds} runs each (seconds)")
        for timing in timings:
            print(timing.line())
        slow = [t.name for t in timings if t.percentile(0.95) >= 1.0]
        print("\nall under 1 s at p95" if not slow else f"\nover 1 s at p95: {', '.join(slow)}")
    finally:
        if server is not None and not args.keep:
            server.stop()
        elif server is not None:
            print(f"server left running: {url} (pg_ctl -D {server.data} stop)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
