"""Photos, videos and PDFs from citizens: what a file is, read from its bytes.

Facts this relies on:
- The declared type (a form's or mail part's Content-Type) and the file name's
  extension are the sender's claims and are ignored: the kind is sniffed from
  the first bytes (JPEG ``FF D8 FF``, PNG's 8-byte signature, ``GIF87a``/
  ``GIF89a``, ``RIFF…WEBP``; ISO base media files — MP4, MOV, 3GP, HEIC — carry
  an ``ftyp`` box at offset 4 whose brand says which; Matroska/WebM start with
  the EBML id ``1A 45 DF A3``; PDF with ``%PDF-``). Anything else (HTML, a
  script, an executable) is refused whatever its name says.
- Images are decoded by Pillow and written again (JPEG, or PNG where there is
  transparency) from their pixels only: EXIF (with GPS), XMP, IPTC and comments
  do not survive. The orientation EXIF carried is applied to the pixels first.
  The pixel count is checked from the header before decoding (a small file can
  decode to gigabytes: a decompression bomb).
- Pillow without the ``pillow-heif`` plugin cannot decode HEIC (iPhone photos):
  such a file is refused with a message asking for JPEG, rather than stored as
  bytes nobody can look at or strip.
- Videos and PDFs are stored as sent. A PDF naming JavaScript, a launch action
  or embedded files is refused; names inside compressed object streams are not
  seen by this check (the console serves PDFs as downloads, never inline).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import secrets
import unicodedata
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from ivr.config.channels import AttachmentLimits
from ivr.intake.types import IncomingAttachment, IntakeRefused

logger = logging.getLogger(__name__)

IMAGE, VIDEO, PDF = "image", "video", "pdf"
# The citizens' files live in this folder of ``paths.recordings`` (the forwards'
# attachments too, in ``attachments/<case code>/``); rows hold paths below it.
ATTACHMENTS_FOLDER = "attachments"
KINDS = (IMAGE, VIDEO, PDF)

# ftyp brands (ISO/IEC 14496-12 and the registrations at mp4ra.org).
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif"}
_QUICKTIME_BRANDS = {b"qt  "}
# Old QuickTime files may open with these atoms instead of ftyp.
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_PDF_ACTIVE = re.compile(rb"/(JavaScript|JS|Launch|EmbeddedFile|OpenAction\s*<<[^>]*/JS)\b")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f-\x9f<>:\"/\\|?*]")


@dataclass(frozen=True)
class Sniffed:
    kind: str  # image, video, pdf
    media_type: str
    extension: str  # of the stored file


def sniff(content: bytes) -> Sniffed | None:
    """The kind of file ``content`` is, from its bytes alone; None: not one we take."""
    head = content[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed(IMAGE, "image/jpeg", "jpg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed(IMAGE, "image/png", "png")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed(IMAGE, "image/gif", "gif")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed(IMAGE, "image/webp", "webp")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return Sniffed(IMAGE, "image/heic", "heic")
        if brand in _QUICKTIME_BRANDS:
            return Sniffed(VIDEO, "video/quicktime", "mov")
        if brand.startswith((b"3gp", b"3g2")):
            return Sniffed(VIDEO, "video/3gpp", "3gp")
        return Sniffed(VIDEO, "video/mp4", "mp4")
    if head[4:8] in _QUICKTIME_ATOMS and len(content) >= 8:
        return Sniffed(VIDEO, "video/quicktime", "mov")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        if b"webm" in content[:256]:
            return Sniffed(VIDEO, "video/webm", "webm")
        return Sniffed(VIDEO, "video/x-matroska", "mkv")
    if head.startswith(b"%PDF-"):
        return Sniffed(PDF, "application/pdf", "pdf")
    return None


def safe_filename(name: str) -> str:
    """The citizen's file name for display: no folders, no control or shell
    characters, NFC, at most 200 characters (the extension kept)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFC", base)
    base = _UNSAFE_NAME.sub("_", base).strip(" .")
    if len(base) > 200:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 200 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else base[:200]
    return base or "attachment"


@dataclass(frozen=True)
class ProcessedAttachment:
    """A file accepted and ready to store: the bytes to write (re-encoded for
    images), its thumbnail, and the photo's GPS position when it had one."""

    kind: str
    media_type: str
    extension: str
    filename: str  # sanitised, display only
    content: bytes
    sha256: str  # of ``content``, the stored bytes
    thumbnail: bytes | None = None
    gps: tuple[float, float] | None = None


def _limit_for(kind: str, limits: AttachmentLimits) -> int:
    return {
        IMAGE: limits.image_max_bytes,
        VIDEO: limits.video_max_bytes,
        PDF: limits.pdf_max_bytes,
    }[kind]


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB"


def process(attachment: IncomingAttachment, limits: AttachmentLimits) -> ProcessedAttachment:
    """Accept one file or raise :class:`IntakeRefused` (field ``attachments``)
    saying why in words the citizen understands."""
    name = safe_filename(attachment.filename)
    content = attachment.content
    if not content:
        raise IntakeRefused(f"tệp {name} trống (empty file)", "attachments")
    found = sniff(content)
    if found is None:
        raise IntakeRefused(
            f"tệp {name} không phải ảnh, video hay PDF (only photos, videos and PDF files "
            "are accepted; the content decides, not the name)",
            "attachments",
        )
    limit = _limit_for(found.kind, limits)
    if len(content) > limit:
        raise IntakeRefused(
            f"tệp {name} quá lớn: {_mb(len(content))}, tối đa {_mb(limit)} "
            f"({found.kind} files may be at most {_mb(limit)})",
            "attachments",
        )
    if found.kind == IMAGE:
        return _process_image(name, content, found, limits)
    if found.kind == PDF and _PDF_ACTIVE.search(content):
        raise IntakeRefused(
            f"tệp PDF {name} chứa mã lệnh hoặc tệp nhúng (PDF files with scripts, launch "
            "actions or embedded files are not accepted)",
            "attachments",
        )
    return ProcessedAttachment(
        found.kind, found.media_type, found.extension, _named(name, found.extension),
        content, hashlib.sha256(content).hexdigest(),
    )  # fmt: skip


def _named(name: str, extension: str) -> str:
    """The display name with the extension of what the file really is."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{stem or 'attachment'}.{extension}"


def _process_image(
    name: str, content: bytes, found: Sniffed, limits: AttachmentLimits
) -> ProcessedAttachment:
    if found.media_type == "image/heic":
        raise IntakeRefused(
            f"ảnh {name} ở định dạng HEIC chưa được hỗ trợ, xin gửi ảnh JPEG "
            "(HEIC photos are not supported: send JPEG)",
            "attachments",
        )
    unreadable = IntakeRefused(f"ảnh {name} bị hỏng (the image cannot be read)", "attachments")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(content))
            width, height = image.size
            if width * height > limits.max_image_pixels:
                raise IntakeRefused(
                    f"ảnh {name} quá nhiều điểm ảnh: {width}×{height} "
                    f"(at most {limits.max_image_pixels} pixels)",
                    "attachments",
                )
            gps = _gps_of(image)
            image.seek(0)  # an animated GIF or WebP: its first frame
            image.load()
            image = ImageOps.exif_transpose(image)
    except IntakeRefused:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise unreadable from exc
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise IntakeRefused(f"ảnh {name} quá lớn khi giải nén ({exc})", "attachments") from exc
    try:
        stored, thumbnail, media_type, extension = _reencode(image, limits)
    except (OSError, ValueError) as exc:  # a pixel mode with no way to RGB, say
        raise unreadable from exc
    return ProcessedAttachment(
        IMAGE, media_type, extension, _named(name, extension), stored,
        hashlib.sha256(stored).hexdigest(), thumbnail, gps,
    )  # fmt: skip


def _reencode(image: Image.Image, limits: AttachmentLimits) -> tuple[bytes, bytes, str, str]:
    """(the stored file, its thumbnail, media type, extension): JPEG, or PNG
    where there is transparency."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    options: dict[str, Any]
    if has_alpha:
        pixels = image.convert("RGBA")
        media_type, extension, fmt, options = "image/png", "png", "PNG", {"optimize": True}
    else:
        pixels = image.convert("RGB")
        media_type, extension, fmt = "image/jpeg", "jpg", "JPEG"
        options = {"quality": 88, "optimize": True}
    # A new image from the pixels alone: no info dict, so no EXIF/XMP/ICC/comment
    # can be carried over by the encoder.
    clean = Image.frombytes(pixels.mode, pixels.size, pixels.tobytes())
    out = io.BytesIO()
    clean.save(out, fmt, **options)
    stored = out.getvalue()
    thumb = clean.convert("RGB")
    thumb.thumbnail((limits.thumbnail_pixels, limits.thumbnail_pixels))
    thumb_out = io.BytesIO()
    thumb.save(thumb_out, "JPEG", quality=80)
    return stored, thumb_out.getvalue(), media_type, extension


_GPS_IFD = 0x8825


def _gps_of(image: Image.Image) -> tuple[float, float] | None:
    """The photo's EXIF position as WGS 84 degrees, or None."""
    try:
        gps: Any = image.getexif().get_ifd(_GPS_IFD)
        if not gps:
            return None
        lat = _degrees(gps.get(2), gps.get(1))
        lon = _degrees(gps.get(4), gps.get(3))
    except (AttributeError, KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return (lat, lon)


def _degrees(value: Any, ref: Any) -> float | None:
    if not value or len(value) != 3:
        return None
    d, m, s = (float(part) for part in value)
    degrees = d + m / 60 + s / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    return -degrees if str(ref).strip().upper() in ("S", "W") else degrees


# --- storage ----------------------------------------------------------------


def relative_folder(hotline_id: str, at: datetime) -> str:
    """``<hotline>/<yyyy>/<mm>``, under the attachments root
    (``paths.recordings``/:data:`ATTACHMENTS_FOLDER`): beside the recordings."""
    return f"{hotline_id}/{at:%Y}/{at:%m}"


@dataclass
class StagedFiles:
    """Files written under temporary names while the transaction runs, renamed
    into place after it commits, removed if it does not: a rolled-back
    submission leaves no file, a committed one no ``.part``."""

    root: Path
    _staged: list[tuple[Path, Path]] = field(default_factory=list)

    def stage(self, folder: str, extension: str, content: bytes) -> str:
        """Write ``content`` to a random name in ``folder``; its final path
        relative to the root."""
        target_dir = self.root / folder
        target_dir.mkdir(parents=True, exist_ok=True)
        name = f"{secrets.token_urlsafe(18)}.{extension}"
        final = target_dir / name
        temp = target_dir / f".{name}.part"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        self._staged.append((temp, final))
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        return f"{folder}/{name}"

    def commit(self) -> None:
        for temp, final in self._staged:
            try:
                os.replace(temp, final)
            except OSError:
                logger.exception("could not move %s into place", temp)
        self._staged.clear()

    def rollback(self) -> None:
        for temp, _final in self._staged:
            temp.unlink(missing_ok=True)
        self._staged.clear()
