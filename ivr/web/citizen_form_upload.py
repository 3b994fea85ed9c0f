"""The public web form's post read with a size limit: the multipart body part
by part in chunks, refused (:class:`FormTooLarge`) as soon as it passes
``channels.web_form.max_upload_bytes``, whether or not a Content-Length
announced it; nothing is kept of a post refused."""

from __future__ import annotations

from urllib.parse import unquote

from aiohttp import BodyPartReader, web

from ivr.intake.types import IncomingAttachment
from ivr.web.citizen_form_checks import LIMITS, LINE_CONTROL

TEXT_PART_BYTES = 64 * 1024  # one text field of the multipart post
CHUNK = 64 * 1024


class FormTooLarge(Exception):
    """The post passed the size limit while it was being read."""


async def _read_part(part: BodyPartReader, limit: int, budget: list[int]) -> bytes:
    """A part's bytes, chunk by chunk; FormTooLarge past ``limit`` or the post's budget."""
    data = bytearray()
    while True:
        chunk = await part.read_chunk(CHUNK)
        if not chunk:
            return bytes(data)
        data += chunk
        budget[0] -= len(chunk)
        if len(data) > limit or budget[0] < 0:
            raise FormTooLarge()


async def read_post(
    request: web.Request, max_bytes: int
) -> tuple[dict[str, str], list[IncomingAttachment]]:
    """The posted fields and files, refused (FormTooLarge) as soon as the
    body passes ``max_bytes``: the declared length first, then while reading."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise FormTooLarge()
    fields: dict[str, str] = {}
    files: list[IncomingAttachment] = []
    if request.content_type != "multipart/form-data":
        if request.content_type != "application/x-www-form-urlencoded":
            raise web.HTTPUnsupportedMediaType(text="send the form as multipart/form-data")
        # Small forms (the status lookup, a report without files): the app's
        # client_max_size (1 MiB) bounds them.
        posted = await request.post()
        return {k: v for k, v in posted.items() if isinstance(v, str)}, files
    budget = [max_bytes]
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):  # a nested multipart: not from our form
            raise web.HTTPBadRequest(text="unexpected nested multipart")
        if part.filename is not None:
            content = await _read_part(part, max_bytes, budget)
            # Only the form's file input; a file input left empty posts an empty part.
            if content and part.name == "files":
                files.append(IncomingAttachment(
                    _safe_filename(part.filename), content, part.headers.get("Content-Type", "")
                ))  # fmt: skip
            continue
        name = part.name or ""
        raw = await _read_part(part, TEXT_PART_BYTES, budget)
        if name in LIMITS or name in ("publish_consent", "share_location"):
            fields[name] = raw.decode("utf-8", errors="replace")
    return fields, files


def _safe_filename(name: str) -> str:
    """The file's own name without folders or control characters (shown to
    staff; the stored file is named by the intake). Browsers and aiohttp's
    client percent-encode what a quoted header value cannot hold."""
    name = unquote(name).replace("\\", "/").rsplit("/", 1)[-1]
    return LINE_CONTROL.sub("", name).strip()[:120] or "file"
