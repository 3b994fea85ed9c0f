"""Attachments through the intake (issue 14): the type comes from the bytes,
photos lose their metadata (their GPS goes into the case only when the citizen
shares their location), sizes and pixel counts are bounded, and a refused or
rolled-back submission leaves no file behind.

Runs on SQLite, and on PostgreSQL with HOTLINE_TEST_DB=postgresql."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

import ivr.intake.service
from ivr.cases.models import Case
from ivr.config.channels import AttachmentLimits
from ivr.contracts.channels import ContactKind
from ivr.intake.attachments import process, safe_filename, sniff
from ivr.intake.models import CaseAttachment
from ivr.intake.types import IncomingAttachment, IntakeRefused
from tests.test_intake import PHONE, Rig, build_rig, web

pytestmark = pytest.mark.db

# Hà Nội, Hồ Gươm: 21° 1' 42.0" N, 105° 51' 7.2" E
GPS = {1: "N", 2: (21.0, 1.0, 42.0), 3: "E", 4: (105.0, 51.0, 7.2)}


def png(size: tuple[int, int] = (40, 30), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else (200, 30, 30, 128)).save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps(size: tuple[int, int] = (800, 600)) -> bytes:
    image = Image.new("RGB", size, (10, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0132] = "2026:11:29 08:00:00"  # DateTime
    exif[0x8825] = GPS
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


@pytest.fixture
def rig_with(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """A rig whose ``channels.attachments`` limits are the keywords given."""
    built: list[Rig] = []

    def build(**limits: Any) -> Rig:
        def edit(data: dict[str, Any]) -> None:
            data["channels"] = {"attachments": limits} if limits else {}

        built.append(build_rig(tmp_path, edit))
        return built[-1]

    yield build
    for rig in built:
        rig.engine.dispose()


def stored(rig: Rig, case_id: int) -> list[CaseAttachment]:
    with rig.sessions() as session:
        return list(
            session.scalars(select(CaseAttachment).where(CaseAttachment.case_id == case_id))
        )


# --- pure: sniffing and names ------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "kind", "media_type"),
    [
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, "image", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "image", "image/png"),
        (b"GIF89a" + b"\x00" * 20, "image", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 20, "image", "image/webp"),
        (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 20, "image", "image/heic"),
        (MP4_HEAD, "video", "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "video", "video/quicktime"),
        (b"\x00\x00\x00\x14ftyp3gp5\x00\x00\x00\x00", "video", "video/3gpp"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video", "video/webm"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska", "video", "video/x-matroska"),
        (b"%PDF-1.7\n", "pdf", "application/pdf"),
    ],
)
def test_the_type_is_read_from_the_bytes(content: bytes, kind: str, media_type: str) -> None:
    found = sniff(content)
    assert found is not None and (found.kind, found.media_type) == (kind, media_type)


@pytest.mark.parametrize(
    "content",
    [b"<!DOCTYPE html><html><script>alert(1)</script>", b"MZ\x90\x00\x03", b"\x7fELF\x02\x01",
     b"#!/bin/sh\nrm -rf /", b"PK\x03\x04", b""],
)  # fmt: skip
def test_anything_else_is_not_a_known_type(content: bytes) -> None:
    assert sniff(content) is None


def test_file_names_lose_folders_and_control_characters() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\Users\\lan\\ảnh đèn.jpg") == "ảnh đèn.jpg"
    assert safe_filename("a\r\nb<script>.png") == "a__b_script_.png"
    assert safe_filename("") == "attachment"
    assert len(safe_filename("x" * 300 + ".jpg")) == 200


def test_a_png_with_transparency_stays_png_and_an_animated_heic_is_refused() -> None:
    item = process(IncomingAttachment("logo.gif", png(mode="RGBA")), AttachmentLimits())
    assert (item.media_type, item.extension) == ("image/png", "png")
    with pytest.raises(IntakeRefused, match="HEIC"):
        process(IncomingAttachment("IMG_1.HEIC", b"\x00\x00\x00\x18ftypheic" + b"\0" * 64),
                AttachmentLimits())  # fmt: skip


# --- through the intake ---------------------------------------------------------------


def test_a_png_named_pdf_is_stored_as_an_image_with_a_thumbnail(
    rig_with: Callable[..., Rig],
) -> None:
    rig = rig_with()
    result = rig.intake.submit(
        web(attachments=(IncomingAttachment("bien-ban.pdf", png((1000, 500)), "application/pdf"),))
    )
    [row] = stored(rig, result.case_id)
    assert (row.kind, row.media_type, row.filename) == ("image", "image/jpeg", "bien-ban.jpg")
    assert row.path and row.path.startswith("bac-tu-liem/2026/11/")
    saved = rig.intake.attachment_for(result.case_id, row.id)
    assert saved is not None and saved.path is not None and saved.thumbnail is not None
    # Beside the recordings, where the console serves them from.
    assert saved.path.is_relative_to((rig.root / "attachments" / "bac-tu-liem").resolve())
    assert saved.path.read_bytes()[:3] == b"\xff\xd8\xff" and row.size == saved.path.stat().st_size
    with Image.open(saved.thumbnail) as thumb:
        assert max(thumb.size) == 320 and thumb.format == "JPEG"
    # Not through another case's id, and no temporary file is left.
    assert rig.intake.attachment_for(result.case_id + 1, row.id) is None
    assert not [p for p in rig.root.rglob("*.part")]


def test_an_html_file_named_photo_jpg_is_refused_and_nothing_is_written(
    rig_with: Callable[..., Rig],
) -> None:
    rig = rig_with()
    before = rig.counts()
    page = b"<html><body><script>document.location='https://evil'</script></body></html>"
    with pytest.raises(IntakeRefused) as refused:
        rig.intake.submit(
            web(attachments=(IncomingAttachment("photo.jpg", page, "image/jpeg"),
                             IncomingAttachment("ok.png", png())))
        )  # fmt: skip
    assert refused.value.field == "attachments" and "photo.jpg" in str(refused.value)
    assert rig.counts() == before


def test_an_oversized_video_and_a_pixel_bomb_are_refused(rig_with: Callable[..., Rig]) -> None:
    rig = rig_with(video_max_bytes=4096, max_image_pixels=10_000)
    before = rig.counts()
    video = MP4_HEAD + b"\x00" * 5000
    with pytest.raises(IntakeRefused, match="video files may be at most"):
        rig.intake.submit(web(attachments=(IncomingAttachment("clip.mp4", video),)))
    with pytest.raises(IntakeRefused, match="pixels"):
        rig.intake.submit(web(attachments=(IncomingAttachment("big.png", png((200, 200))),)))
    assert rig.counts() == before
    small = rig.intake.submit(web(attachments=(IncomingAttachment("c.mov", MP4_HEAD * 10),)))
    [row] = stored(rig, small.case_id)
    assert (row.kind, row.media_type, row.filename) == ("video", "video/mp4", "c.mp4")
    assert (rig.files / str(row.path)).read_bytes() == MP4_HEAD * 10  # videos are kept as sent


def test_too_many_files_and_a_pdf_with_javascript_are_refused(rig_with: Callable[..., Rig]) -> None:
    rig = rig_with(max_per_message=1)
    with pytest.raises(IntakeRefused, match="at most 1 attachments"):
        rig.intake.submit(web(attachments=(IncomingAttachment("a.png", png()),) * 2))
    script = b"%PDF-1.4\n1 0 obj << /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>"
    with pytest.raises(IntakeRefused, match="scripts"):
        rig.intake.submit(web(attachments=(IncomingAttachment("don.pdf", script),)))
    plain = rig.intake.submit(
        web(text="", attachments=(IncomingAttachment("don.pdf", b"%PDF-1.4\n%%EOF\n"),))
    )
    assert [r.kind for r in stored(rig, plain.case_id)] == ["pdf"]


def _exif_of(path: Path) -> Any:
    with Image.open(path) as image:
        return image.getexif(), dict(image.info)


def test_photo_location_is_stripped_and_used_only_when_shared(rig_with: Callable[..., Rig]) -> None:
    rig = rig_with()
    photo = jpeg_with_gps()
    with Image.open(io.BytesIO(photo)) as original:  # the test's photo does carry GPS
        assert original.getexif().get_ifd(0x8825)
    kept_private = rig.intake.submit(web(attachments=(IncomingAttachment("a.jpg", photo),)))
    shared = rig.intake.submit(
        web(share_location=True, contacts=((ContactKind.PHONE, PHONE),),
            attachments=(IncomingAttachment("b.jpg", photo),))
    )  # fmt: skip
    for result in (kept_private, shared):
        [row] = stored(rig, result.case_id)
        exif, info = _exif_of(rig.files / str(row.path))
        assert len(exif) == 0 and not exif.get_ifd(0x8825)
        assert not {"exif", "xmp", "icc_profile", "comment"} & set(info)
        assert b"PhoneMaker" not in (rig.files / str(row.path)).read_bytes()
    with rig.sessions() as session:
        private = session.get(Case, kept_private.case_id)
        public = session.get(Case, shared.case_id)
        assert private is not None and public is not None
        assert (private.latitude, private.longitude) == (None, None)
        assert public.latitude == pytest.approx(21.0 + 1 / 60 + 42 / 3600)
        assert public.longitude == pytest.approx(105.0 + 51 / 60 + 7.2 / 3600)
    # Typed coordinates win over the photo's.
    typed = rig.intake.submit(
        web(share_location=True, latitude=21.05, longitude=105.78,
            attachments=(IncomingAttachment("c.jpg", photo),))
    )  # fmt: skip
    with rig.sessions() as session:
        case = session.get(Case, typed.case_id)
        assert case is not None and (case.latitude, case.longitude) == (21.05, 105.78)


def test_a_rolled_back_submission_leaves_no_file(
    rig_with: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = rig_with()
    before = rig.counts()

    real = ivr.intake.service.CaseAttachment
    made: list[Any] = []

    def second_row_fails(**fields: Any) -> Any:
        # The first photo's files are on disk (under temporary names) when the
        # second row fails: all of it must go.
        if made:
            raise RuntimeError("disk full while writing the second attachment")
        made.append(real(**fields))
        return made[-1]

    monkeypatch.setattr(ivr.intake.service, "CaseAttachment", second_row_fails)
    photo = IncomingAttachment("a.jpg", jpeg_with_gps())
    with pytest.raises(RuntimeError):
        rig.intake.submit(web(idempotency_key="k1", attachments=(photo, photo)))
    assert made and rig.counts() == before
    assert [p for p in rig.root.rglob("*") if p.is_file()] == []


def test_a_broken_image_is_refused_and_a_webp_becomes_jpeg() -> None:
    with pytest.raises(IntakeRefused, match="cannot be read"):
        process(IncomingAttachment("a.jpg", b"\xff\xd8\xff\xe0" + b"\x00garbage" * 50),
                AttachmentLimits())  # fmt: skip
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(out, "WEBP")
    item = process(IncomingAttachment("x.png", out.getvalue()), AttachmentLimits())
    assert (item.media_type, item.filename) == ("image/jpeg", "x.jpg")
    assert item.content[:3] == b"\xff\xd8\xff" and item.thumbnail is not None
