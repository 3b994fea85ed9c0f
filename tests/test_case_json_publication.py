"""The case's JSON (API, exports, screen-pop) carries its publication for the
staff who read it: the citizen's consent, who recorded it and when, the public
id and when and by whom it was published (issue 13)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from ivr.cases.models import Case
from ivr.web.payloads import case_json


def test_the_case_json_carries_consent_and_publication() -> None:
    consented = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    published = datetime(2026, 3, 9, 8, 30, tzinfo=UTC)
    case = Case(
        code="TX-2026-000001", status="closed", channel="phone", hotline_id="thanh-xuan",
        caller_number="+84912000111", summary="Đèn đường hỏng", due_date=date(2026, 3, 10),
        received_at=consented, publish_consent=True, publish_consent_by="dtv1",
        publish_consent_at=consented, public_id="k3Jx9QpL2mZt", published_at=published,
        published_by="giamsat",
    )  # fmt: skip
    out = case_json(case)
    assert {k: out[k] for k in ("publish_consent", "publish_consent_by", "publish_consent_at",
                                "public_id", "published_at", "published_by")} == {
        "publish_consent": True,
        "publish_consent_by": "dtv1",
        "publish_consent_at": "2026-03-02T03:00:00+00:00",
        "public_id": "k3Jx9QpL2mZt",
        "published_at": "2026-03-09T08:30:00+00:00",
        "published_by": "giamsat",
    }  # fmt: skip

    unpublished = case_json(Case(code="TX-2026-000002", status="received", channel="phone",
                                 hotline_id="thanh-xuan", publish_consent=False))  # fmt: skip
    assert unpublished["publish_consent"] is False
    assert unpublished["public_id"] is None and unpublished["published_at"] is None
