"""The public web form's fields checked (ivr/web/citizen_form.py shows the
pages): what the citizen typed, cleaned and kept as typed for the page shown
back, each problem as a message beside its field, and the checked report as
the intake's :class:`Submission`; the status page's contact read the same way.

The messages are English, marked for translation and translated when shown.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ivr.config.email import check_email_address
from ivr.config.schema import Area, Hotline, HotlineConfig
from ivr.contracts.channels import Channel, ContactKind
from ivr.intake.types import IncomingAttachment, Submission
from ivr.phone import normalise_caller
from ivr.web.i18n import N_

# Text fields: at most this many characters (a description is a report, not a file).
LIMITS = {"name": 100, "phone": 30, "email": 254, "address": 300, "description": 5000,
          "code": 16, "contact": 254, "latitude": 32, "longitude": 32, "topic": 64,
          "ward": 64, "form_token": 200}  # fmt: skip
DESCRIPTION_MIN = 10
# The form's fields top to bottom ("form": a problem with the whole post, listed first).
FIELD_ORDER = ("form", "topic", "description", "files", "ward", "address", "latitude", "name",
               "phone", "email")  # fmt: skip
# Allowed in the description besides printable text; single-line fields allow none.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")
LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
CASE_CODE = re.compile(r"^[0-9]{6,16}$")


# Messages shown beside the fields (translated when shown).
M_REQUIRED_TOPIC = N_("Choose what the report is about.")
M_UNKNOWN_CHOICE = N_("Choose one of the options in the list.")
M_DESCRIPTION_SHORT = N_("Describe the problem in a few words (at least 10 characters).")
M_TOO_LONG = N_("This text is too long (at most {limit} characters).")
M_CONTROL = N_("This text holds characters that are not allowed (line breaks or control codes).")
M_PHONE = N_("Enter a Vietnamese phone number, for example 0912 345 678.")
M_EMAIL = N_("Enter an email address such as ten@example.vn.")
M_CONTACT = N_("Give a phone number or an email address so the answer can reach you.")
M_COORDINATES = N_("Give both latitude and longitude as numbers, or leave both empty.")
M_FILES = N_("At most {count} files.")
M_EXPIRED = N_("The form was open too long. Check your input, choose the files again and send.")
M_FILES_AGAIN = N_("Choose the photos or video again: a browser cannot keep them.")
M_NOT_FOUND = N_(
    "No report matches this code and contact. Check both: the phone number or email "
    "must be the one given with the report."
)
M_CODE = N_("Enter the case code, digits only.")


# The intake's names of the fields it refuses → the form's (else the summary shows it).
INTAKE_FIELDS = {"topic": "topic", "area_code": "ward", "address": "address",
                 "latitude": "latitude", "longitude": "latitude", "text": "description",
                 "attachments": "files", "name": "name", "contacts": "phone"}  # fmt: skip


@dataclass
class ReportForm:
    """What the citizen typed, as typed (shown back on errors), and the
    cleaned values once :func:`check_report` accepted it."""

    values: dict[str, str] = field(default_factory=dict)
    publish_consent: bool = False
    share_location: bool = False
    errors: dict[str, str] = field(default_factory=dict)  # field → English message
    error_values: dict[str, dict[str, object]] = field(default_factory=dict)
    phone_e164: str | None = None
    email: str | None = None
    latitude: float | None = None
    longitude: float | None = None

    def error(self, name: str, message: str, **values: object) -> None:
        self.errors.setdefault(name, message)
        if values:
            self.error_values.setdefault(name, values)


def wards(config: HotlineConfig) -> list[tuple[str, list[Area]]]:
    """The units a report can be placed in: the leaves of the areas tree
    (wards, communes), grouped under their parent's name."""
    groups: list[tuple[str, list[Area]]] = []

    def walk(areas: list[Area], parent: str) -> None:
        leaves = [a for a in areas if not a.children]
        if leaves:
            groups.append((parent, leaves))
        for area in areas:
            if area.children:
                walk(area.children, area.name)

    walk(config.areas, "")
    return groups


def _clean_text(form: ReportForm, name: str, *, multiline: bool = False) -> str:
    text = form.values.get(name, "")
    if multiline:  # a textarea posts CRLF
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.strip()
    if (_CONTROL if multiline else LINE_CONTROL).search(text):
        form.error(name, M_CONTROL)
    if len(text) > LIMITS[name]:
        form.error(name, M_TOO_LONG, limit=LIMITS[name])
    return text


def _coordinate(text: str, bound: float) -> float | None:
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return None
    if not math.isfinite(value) or abs(value) > bound:
        return None
    return round(value, 6)


def check_report(
    fields: dict[str, str], config: HotlineConfig, hotline: Hotline, *, files: int = 0
) -> ReportForm:
    """Check a posted report; ``errors`` is empty when it may be submitted."""
    del hotline  # topics and areas are the deployment's, shared by its hotlines
    form = ReportForm(values={k: v for k, v in fields.items() if k in LIMITS})
    form.publish_consent = fields.get("publish_consent", "") in ("1", "on", "yes")
    form.share_location = fields.get("share_location", "") in ("1", "on", "yes")
    for name in ("name", "address"):
        form.values[name] = _clean_text(form, name)
    form.values["description"] = _clean_text(form, "description", multiline=True)
    if "description" not in form.errors and len(form.values["description"]) < DESCRIPTION_MIN:
        form.error("description", M_DESCRIPTION_SHORT)

    topic = form.values.get("topic", "")
    if not topic:
        form.error("topic", M_REQUIRED_TOPIC)
    elif topic not in {t.code for t in config.cases.topics}:
        form.error("topic", M_UNKNOWN_CHOICE)
    ward = form.values.get("ward", "")
    if ward and ward not in {a.code for _, group in wards(config) for a in group}:
        form.error("ward", M_UNKNOWN_CHOICE)

    phone = form.values.get("phone", "").strip()
    if phone:
        number = normalise_caller(phone) if not LINE_CONTROL.search(phone) else None
        # A citizen's own number: E.164, not a short code or a withheld marker.
        if number is None or number.e164 is None or not number.e164.startswith("+"):
            form.error("phone", M_PHONE)
        else:
            form.phone_e164 = number.e164
    email = form.values.get("email", "").strip()
    if email:
        try:
            form.email = check_email_address(email).lower()
        except ValueError:
            form.error("email", M_EMAIL)
    if not phone and not email:
        form.error("phone", M_CONTACT)

    latitude = form.values.get("latitude", "").strip()
    longitude = form.values.get("longitude", "").strip()
    if latitude or longitude:
        form.latitude = _coordinate(latitude, 90)
        form.longitude = _coordinate(longitude, 180)
        if form.latitude is None or form.longitude is None:
            form.error("latitude", M_COORDINATES)
    if files > config.channels.web_form.max_files:
        form.error("files", M_FILES, count=config.channels.web_form.max_files)
    return form


def submission_of(
    form: ReportForm,
    hotline_id: str,
    nonce: str,
    attachments: tuple[IncomingAttachment, ...],
) -> Submission:
    """The checked form as the intake's :class:`Submission`."""
    contacts: list[tuple[ContactKind, str]] = []
    if form.phone_e164:
        contacts.append((ContactKind.PHONE, form.phone_e164))
    if form.email:
        contacts.append((ContactKind.EMAIL, form.email))
    return Submission(
        hotline_id=hotline_id,
        channel=Channel.WEB,
        text=form.values["description"],
        contacts=tuple(contacts),
        name=form.values.get("name", ""),
        topic=form.values.get("topic") or None,
        area_code=form.values.get("ward") or None,
        address=form.values.get("address", ""),
        latitude=form.latitude,
        longitude=form.longitude,
        share_location=form.share_location,
        publish_consent=form.publish_consent,
        attachments=attachments,
        idempotency_key=f"web-form:{hotline_id}:{nonce}",
    )


def parse_contact(text: str) -> tuple[ContactKind, str] | None:
    """A phone number (to E.164) or an email address (lower-cased); None if neither."""
    text = text.strip()
    if not text or LINE_CONTROL.search(text):
        return None
    if "@" in text:
        try:
            return ContactKind.EMAIL, check_email_address(text).lower()
        except ValueError:
            return None
    number = normalise_caller(text)
    if number.e164 is None or not number.e164.startswith("+"):
        return None
    return ContactKind.PHONE, number.e164
