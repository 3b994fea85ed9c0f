"""The one schema of the Hotline config file.

Structure and types are checked by pydantic; cross-references (a fallback that
names an unknown ward, a queue member that is no agent) and menu ambiguity are
checked afterwards in :mod:`ivr.config.references`, so every error carries the
path of the field it is about and can be tied back to a line of the file.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from ivr.config.channels import ChannelsSection
from ivr.config.cluster import ClusterSection
from ivr.config.destinations import Destination
from ivr.config.email import EmailSection
from ivr.config.forwarding import ForwardingSection, ResponsibleUnit
from ivr.config.pause_reasons import DEFAULT_PAUSE_REASONS, PauseReason
from ivr.config.records import (
    CasesSection,
    RecordingSection,
    SmsSection,
    TranscriptionSection,
)
from ivr.config.retention import RetentionSection
from ivr.config.safe_text import (
    DialPrefix,
    Host,
    SafeName,
    SafePath,
    SafeTitle,
    Secret,
    SipUri,
    SipUser,
    check_host,
)
from ivr.config.web import WebSection

_ID = r"^[a-z0-9][a-z0-9_-]*$"
_DIGITS = r"^[0-9*#]+$"
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _to_destination(value: Any) -> Destination:
    if isinstance(value, Destination):
        return value
    return Destination.parse(value)


DestinationField = Annotated[Destination, BeforeValidator(_to_destination)]
Identifier = Annotated[str, Field(pattern=_ID, min_length=1, max_length=64)]
KeySequence = Annotated[str, Field(pattern=_DIGITS, min_length=1, max_length=8)]


def _clock(text: str) -> time:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if not match:
        raise ValueError(f"expected a time of day HH:MM, got {text!r}")
    return time(int(match.group(1)), int(match.group(2)))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class Span(Strict):
    """A time-of-day span; an end at or before the start crosses midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> Span:
        start, sep, end = str(text).partition("-")
        if not sep:
            raise ValueError(f"expected a span HH:MM-HH:MM, got {text!r}")
        return cls(start=_clock(start), end=_clock(end))

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


SpanField = Annotated[Span, BeforeValidator(lambda v: v if isinstance(v, Span) else Span.parse(v))]


class AsteriskSip(Strict):
    bind: Host = "127.0.0.1"
    port: int = Field(5060, ge=1, le=65535)


class AsteriskRtp(Strict):
    start: int = Field(10000, ge=1024, le=65535)
    end: int = Field(20000, ge=1024, le=65535)


class AmiNode(Strict):
    """One Asterisk node the queue manager watches (same AMI user and secret)."""

    id: Identifier
    host: Host = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)


class AsteriskAmi(Strict):
    bind: Host = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: Identifier = "hotline"
    secret: Secret
    # A second AMI user that may only reload modules (AMI privilege "system"),
    # used when an administrator applies a config change; absent: no reloads.
    reload_username: Identifier = "hotline-reload"
    reload_secret: Secret | None = None
    # Several nodes behind a SIP proxy; empty: the one node at bind:port.
    nodes: list[AmiNode] = []

    @field_validator("reload_username")
    @classmethod
    def _reload_user_differs(cls, value: str, info: Any) -> str:
        if value == info.data.get("username"):
            raise ValueError("must differ from username (that user may not reload)")
        return value

    def node_list(self) -> list[AmiNode]:
        """The nodes the queue manager connects to."""
        host = "127.0.0.1" if self.bind == "0.0.0.0" else self.bind
        return list(self.nodes) or [AmiNode(id="local", host=host, port=self.port)]


class AsteriskAgi(Strict):
    """Where Asterisk reaches our FastAGI server (``host``: written into the
    dialplan), where the server listens (``bind``), and who may connect."""

    host: Host = "127.0.0.1"
    port: int = Field(4573, ge=1, le=65535)
    # Loopback unless Asterisk runs on another machine; then set the address
    # Asterisk connects to (or 0.0.0.0) and the allow-list does the rest.
    bind: Host = "127.0.0.1"
    # Addresses, CIDR networks or host names allowed to connect; absent: every
    # node of asterisk.ami (node_list) plus loopback. Others are cut at once.
    allowed_clients: list[str] | None = None
    # A call record still "in progress" after this long is a crash's leftover
    # (its hangup never reached us): closed as "interrupted" at start and every
    # 10 minutes. Longer than any real call.
    max_call_seconds: int = Field(7200, ge=60)

    @field_validator("allowed_clients")
    @classmethod
    def _clients_are_hosts_or_networks(cls, value: list[str] | None) -> list[str] | None:
        for entry in value or []:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                try:
                    check_host(entry)
                except ValueError:
                    raise ValueError(
                        f"{entry!r}: expected an IP address, a network (CIDR) or a host name"
                    ) from None
        return value


class AsteriskSection(Strict):
    sip: AsteriskSip = AsteriskSip()
    rtp: AsteriskRtp = AsteriskRtp()
    ami: AsteriskAmi
    agi: AsteriskAgi = AsteriskAgi()
    # Where the running Asterisk reads the rendered .conf files; when set, a
    # config applied from the console is rendered there before the reload.
    config_dir: SafePath | None = None


class DatabaseSection(Strict):
    url: str = "sqlite:///var/hotline.db"


class PathsSection(Strict):
    """Directories; relative ones are taken from the config file's folder."""

    prompts: SafePath = Path("../prompts")
    recordings: SafePath = Path("../recordings")
    routing_table: SafePath = Path("../var/routing.json")
    config_history: SafePath = Path("../var/config-history")  # earlier versions of this file
    # Generated SIP secrets of phones that have none in this file (mode 0600;
    # `hotline phones secret ID` prints one): see ivr/config/phone_secrets.py.
    phone_secrets: SafePath = Path("../var/phone-secrets.json")


class Trunk(Strict):
    id: Identifier
    host: Host
    port: int = Field(5060, ge=1, le=65535)
    username: SipUser | None = None
    secret: Secret | None = None
    dial_prefix: DialPrefix = ""


class Phone(Strict):
    """A SIP phone: an agent's desk phone, a chairman's IP phone, a department's line.

    ``contact`` pins a static address (a gateway, or a test's SIP answerer);
    without it the phone registers. Either way the phone authenticates whatever
    it sends (REGISTER, INVITE) with ``secret``; without one here, a generated
    secret is kept in ``paths.phone_secrets``.
    """

    id: Identifier
    name: SafeName = ""
    contact: SipUri | None = None
    secret: Secret | None = None


class Area(Strict):
    """An administrative unit. The tree has any depth (province, ward; or more)."""

    code: Identifier
    name: SafeTitle = Field(min_length=1)
    aliases: list[Annotated[SafeTitle, Field(min_length=1)]] = []
    shortcut: KeySequence | None = None
    chairman: DestinationField | None = None
    fallbacks: list[DestinationField] = []
    ring_seconds: int | None = Field(None, ge=3, le=120)
    # The unit's code in the `vietnam-provinces` package ("01" a province,
    # "00070" a ward or commune); set by `hotline areas import`.
    official_code: Annotated[str, Field(pattern=r"^([0-9]{2}|[0-9]{5})$")] | None = None
    children: list[Area] = []


class Department(Strict):
    code: Identifier
    name: SafeTitle = Field(min_length=1)
    extension: Annotated[str, Field(pattern=r"^[0-9]{2,6}$")]
    target: DestinationField


class WeeklyHours(Strict):
    mon: list[SpanField] = []
    tue: list[SpanField] = []
    wed: list[SpanField] = []
    thu: list[SpanField] = []
    fri: list[SpanField] = []
    sat: list[SpanField] = []
    sun: list[SpanField] = []

    def spans_on(self, weekday: int) -> list[Span]:
        return list(getattr(self, _WEEKDAYS[weekday]))


class Schedule(Strict):
    """Opening hours; ``always`` is 24/7 including holidays."""

    always: bool = False
    weekly: WeeklyHours = WeeklyHours()
    closed_on_holidays: bool = True


class Holiday(Strict):
    date: date
    name: SafeTitle


class WorkingDay(Strict):
    """A day the government announces as a working day: a weekend day that makes
    up for a bridge day, or a computed holiday taken back (see
    ivr/config/holiday_calendar.py). Schedules that close on holidays open that
    day with the hours of ``hours_of``."""

    date: date
    name: SafeTitle
    hours_of: Weekday = "mon"


class Menu(Strict):
    prompt: Identifier
    timeout_seconds: int = Field(5, ge=1, le=30)
    attempts: int = Field(3, ge=1, le=10)
    terminator: Literal["", "#"] = ""
    options: dict[KeySequence, DestinationField] = {}
    areas_under: Identifier | None = None  # shortcuts of this unit's children are options
    include_departments: bool = False  # department extensions are options
    # Read a unit's name back after its code ("Phường …, press 1 to confirm") and
    # ring only after 1: with a city's hundred-odd codes a slip of one digit would
    # otherwise ring the wrong chairman.
    confirm_area: bool = False
    on_invalid: DestinationField = Destination.parse("queue:operator")
    on_no_input: DestinationField = Destination.parse("queue:operator")


class Hotline(Strict):
    id: Identifier
    name: SafeTitle = Field(min_length=1)
    unit_name: SafeTitle = Field(min_length=1)
    numbers: list[Annotated[str, Field(pattern=r"^\+?[0-9]{3,15}$")]] = Field(min_length=1)
    language: Literal["vi", "en"] = "vi"
    schedule: Identifier = "always"
    out_of_hours: DestinationField = Destination.parse("voicemail")
    ring_seconds: int = Field(20, ge=3, le=120)
    greeting_prompts: list[Identifier] = ["greeting", "recording_notice"]
    # Say "you chose ward X, connecting" before ringing; off where every
    # second counts (it delays the ring by the prompt's length).
    announce_selection: bool = True
    # A caller with an open case hears "press 1 for its status" after the greeting.
    offer_open_case: bool = True
    main_menu: Identifier = "main"
    menus: dict[Identifier, Menu]
    failure_destination: DestinationField = Destination.parse("queue:operator")
    # A key pressed during the greeting switches the rest of the call to English
    # prompts (the greeting then says "For English, press …"); None: no offer.
    english_key: KeySequence | None = None
    # The hotline's own texts, replacing catalog entries of the same name (topic
    # menus, the complaints message, the greeting) or adding new ones; placeholders
    # {unit_name}, {hotline_name}, {opening_hours} (ivr/config/prompt_texts.py).
    prompts: dict[Identifier, dict[Literal["vi", "en"], Annotated[str, Field(min_length=1)]]] = {}
    # The name the citizen's phone shows on this hotline's texts (case code,
    # answer); None: the deployment's ``sms.sender``.
    sms_sender: SafeName | None = Field(None, min_length=1, max_length=20)


class Queue(Strict):
    id: Identifier
    title: SafeTitle = Field(min_length=1)
    strategy: Literal["ringall", "leastrecent", "fewestcalls", "rrmemory", "linear"] = "leastrecent"
    ring_seconds: int = Field(15, ge=3, le=120)
    wrapup_seconds: int = Field(10, ge=0, le=600)
    service_level_seconds: int = Field(30, ge=5, le=600)
    max_wait_seconds: int = Field(600, ge=10, le=7200)
    schedule: Identifier | None = None
    announce_position: bool = True  # position and expected wait when callers wait
    # Key 1 while waiting: leave the queue, keep the place, be called back.
    callback: bool = True
    callback_attempts: int = Field(3, ge=1, le=10)
    callback_retry_seconds: int = Field(120, ge=5, le=3600)
    # Pause an agent who lets a queue call ring out (reason "Auto-Pause").
    auto_pause: bool = False
    members: list[Identifier] = []  # agents always in the queue (besides the roster)
    # The hotline whose calls, supervisors and statistics this queue belongs
    # to; required when the file has several hotlines (implied with one).
    hotline: Identifier | None = None


class Agent(Strict):
    id: Identifier
    name: SafeName = Field(min_length=1)
    phone: Identifier
    # The hotline this agent works for (required with several hotlines; its
    # queues, its supervisors). Implied with one.
    hotline: Identifier | None = None


class Shift(Strict):
    id: Identifier
    title: SafeTitle = ""
    hours: SpanField
    # The fewest agents (all queues together) the shift may have on a day; the
    # roster page warns below it. 0: no minimum.
    min_agents: int = Field(0, ge=0, le=500)


class RosterEntry(Strict):
    shift: Identifier
    queue: Identifier
    agents: list[Identifier]
    weekdays: list[Weekday] = list(_WEEKDAYS)


class RosterOverride(Strict):
    date: date
    shift: Identifier
    queue: Identifier
    agents: list[Identifier]


class Roster(Strict):
    shifts: list[Shift] = []
    assignments: list[RosterEntry] = []
    overrides: list[RosterOverride] = []


class HotlineConfig(Strict):
    """The whole file. ``source`` is where it was read from (not part of the file)."""

    timezone: str = "Asia/Ho_Chi_Minh"
    asterisk: AsteriskSection
    database: DatabaseSection = DatabaseSection()
    paths: PathsSection = PathsSection()
    trunks: list[Trunk] = []
    phones: list[Phone] = []
    areas: list[Area] = []
    departments: list[Department] = []
    schedules: dict[Identifier, Schedule] = {}
    # Public holidays computed for every year (ivr/config/holiday_calendar.py);
    # absent: only the days listed in ``holidays``.
    holidays_from: Literal["vietnam"] | None = None
    holidays: list[Holiday] = []  # days off, added to the computed ones
    working_days: list[WorkingDay] = []  # announced working days (they win)
    queues: list[Queue] = []
    agents: list[Agent] = []
    roster: Roster = Roster()
    # Recording, transcription, case records and SMS (ivr/config/records.py).
    recording: RecordingSection = RecordingSection()
    transcription: TranscriptionSection = TranscriptionSection()
    cases: CasesSection = CasesSection()
    sms: SmsSection = SmsSection()
    # Outgoing mail: units, supervisors, citizens (ivr/config/email.py).
    email: EmailSection = EmailSection()
    # How long each kind of personal data is kept (ivr/config/retention.py).
    retention: RetentionSection = RetentionSection()
    web: WebSection = WebSection()  # the web console (ivr/config/web.py)
    # Units cases are forwarded to, and their deadlines (ivr/config/forwarding.py).
    units: list[ResponsibleUnit] = []
    forwarding: ForwardingSection = ForwardingSection()
    # Written channels into the case store: web form, email, SMS, Zalo, Open311
    # (ivr/config/channels.py).
    channels: ChannelsSection = ChannelsSection()
    # Several Asterisk nodes behind Kamailio (ivr/config/cluster.py); empty: one node.
    cluster: ClusterSection = ClusterSection()
    # Codes an agent picks from when pausing (ivr/config/pause_reasons.py).
    pause_reasons: list[PauseReason] = Field(
        default_factory=lambda: list(DEFAULT_PAUSE_REASONS), min_length=1
    )
    hotlines: list[Hotline] = Field(min_length=1)
    source: Path | None = Field(None, exclude=True)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("pause_reasons")
    @classmethod
    def _unique_reason_codes(cls, value: list[PauseReason]) -> list[PauseReason]:
        codes = [r.code for r in value]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"pause reason codes must be unique; repeated: {duplicates}")
        return value

    def pause_reason(self, code: str) -> PauseReason | None:
        return next((r for r in self.pause_reasons if r.code == code), None)

    def ami_nodes(self) -> list[AmiNode]:
        """The Asterisk nodes watched over AMI (queue manager, reloads, FastAGI's
        default allowed clients): ``cluster.nodes`` at their AMI addresses when
        set, else ``asterisk.ami.node_list()`` (one node, or the older list)."""
        if self.cluster.nodes:
            return [AmiNode(id=n.id, host=n.ami.host, port=n.ami.port) for n in self.cluster.nodes]
        return self.asterisk.ami.node_list()

    def agi_node_hosts(self) -> list[str]:
        """Where FastAGI sessions come from: every node's AMI and SIP host (a
        node may use one address for each), else ``asterisk.ami``'s nodes."""
        hosts = [n.host for n in self.ami_nodes()]
        hosts += [n.sip.host for n in self.cluster.nodes]
        return list(dict.fromkeys(hosts))

    # Lookups used everywhere; the lists are small, so a scan is fine and keeps
    # the model immutable.
    def area(self, code: str) -> Area | None:
        return next((a for a in iter_areas(self.areas) if a.code == code), None)

    def queue(self, queue_id: str) -> Queue | None:
        return next((q for q in self.queues if q.id == queue_id), None)

    def hotline(self, hotline_id: str) -> Hotline | None:
        return next((h for h in self.hotlines if h.id == hotline_id), None)

    def hotline_for_number(self, number: str) -> Hotline | None:
        return next((h for h in self.hotlines if number in h.numbers), None)

    # Tenancy: every queue and agent belongs to one hotline. With one hotline
    # the owner is implied; with several it is written (ivr/config/references.py
    # refuses a file where it is not). Nothing ever falls back to "the first".
    def sole_hotline(self) -> Hotline | None:
        """The hotline of a single-hotline config; None when there are several."""
        return self.hotlines[0] if len(self.hotlines) == 1 else None

    def hotline_or_sole(self, hotline_id: str | None) -> Hotline | None:
        """The hotline named, or the only one when the name is missing or
        unknown in a single-hotline config; None when it cannot be known."""
        found = self.hotline(hotline_id) if hotline_id else None
        return found or self.sole_hotline()

    def queue_owner(self, queue_id: str) -> str | None:
        """The id of the hotline a queue belongs to (None: unknown queue, or no
        owner written in a multi-hotline file, which check-config refuses)."""
        queue = self.queue(queue_id)
        if queue is None:
            return None
        return _owner(queue.hotline, self.sole_hotline())

    def agent_owner(self, agent_id: str) -> str | None:
        """The id of the hotline an agent works for (None as for queue_owner)."""
        agent = next((a for a in self.agents if a.id == agent_id), None)
        if agent is None:
            return None
        return _owner(agent.hotline, self.sole_hotline())

    def unit(self, code: str) -> ResponsibleUnit | None:
        return next((u for u in self.units if u.code == code), None)

    def unit_owner(self, code: str) -> str | None:
        """The hotline a responsible unit works with (None: unknown unit, or a
        unit shared by every hotline of a multi-hotline file)."""
        unit = self.unit(code)
        if unit is None:
            return None
        return _owner(unit.hotline, self.sole_hotline())

    def units_for(self, hotline_id: str) -> list[ResponsibleUnit]:
        """The units a hotline may forward to: its own and the shared ones."""
        return [u for u in self.units if u.hotline in (None, hotline_id)]

    def queues_of(self, hotline_id: str) -> list[Queue]:
        return [q for q in self.queues if self.queue_owner(q.id) == hotline_id]

    def agents_of(self, hotline_id: str) -> list[Agent]:
        return [a for a in self.agents if self.agent_owner(a.id) == hotline_id]

    def resolve_path(self, path: Path) -> Path:
        if path.is_absolute() or self.source is None:
            return path
        return (self.source.parent / path).resolve()

    @property
    def database_url(self) -> str:
        """The database URL with a relative SQLite path taken from the config's folder."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
            return prefix + str(self.resolve_path(Path(url[len(prefix) :])))
        return url


def _owner(written: str | None, sole: Hotline | None) -> str | None:
    if written is not None:
        return written
    return sole.id if sole is not None else None


def iter_areas(areas: list[Area]) -> list[Area]:
    """All units of the tree, depth first."""
    found: list[Area] = []
    for area in areas:
        found.append(area)
        found.extend(iter_areas(area.children))
    return found


WEEKDAYS = _WEEKDAYS
