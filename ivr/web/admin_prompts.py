"""Voice prompts for the clerks who run a hotline: every prompt of a hotline in
one of its languages, the sound callers hear now (played in the browser), where
it comes from (a studio recording or the synthesized voice), and a studio
recording uploaded, listened to and made live, or removed.

The flow a clerk follows: the list → "upload" on a prompt's row (any common
audio format; converted at once to 8 kHz mono 16-bit WAV by
:mod:`ivr.prompt_upload`) → a preview page with both players, the current sound
and the new one → "make it live" → the list again, with a notice. Removing a
recording (behind a confirmation page) rebuilds the prompt with the
synthesized voice. Both rebuild that one prompt only
(:func:`ivr.prompt_setup.build_one_prompt`): the file Asterisk plays is replaced
by a rename, so the next call hears it, without a reload.

Who: administrators for every hotline; a supervisor for their own hotline only
(every hotline when their account names none), as the rest of the console
scopes them (:class:`ivr.web.access.AccessScope`). Another hotline's page, its
sounds and its staged uploads are refused (403, audited). A prompt is named by
the URL only as a key: the file served is looked up in the hotline's prompt
list, never built from the request. Uploads, making live and removals are
audited with who, the prompt and the file's name.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ivr import prompt_upload
from ivr.config.prompt_texts import AREA_PLACEHOLDER, AREA_TEMPLATE
from ivr.config.schema import Hotline, HotlineConfig, iter_areas
from ivr.prompt_setup import (
    CATALOG,
    build_one_prompt,
    prompt_languages,
    prompt_variables,
    studio_roots,
)
from ivr.prompt_upload import PendingUpload, UploadRefused
from ivr.prompts import ENGLISH_KEY_PLACEHOLDER, CatalogError, area_prompt_name, load_catalog
from ivr.web.i18n import N_, translator
from ivr.web.rendering import error_page, refuse, render
from ivr.web.state import LANGUAGE, WATCHERS, Route, audit, scope_of, state_of, user_of

logger = logging.getLogger(__name__)

# The upload form's body: the file and a token (the middleware reads the whole
# form for its CSRF check). A little more than the file limit, so a file just
# over it gets the page's own message rather than aiohttp's 413.
UPLOAD_BODY_BYTES = prompt_upload.MAX_UPLOAD_BYTES + 2 * 1024 * 1024
ACCEPT = "audio/*,.wav,.mp3,.ogg,.opus,.m4a,.mp4,.flac,.webm"

STUDIO_OWN, STUDIO_SHARED = "studio", "studio_shared"
SYNTHESIZED, MISSING = "synthesized", "missing"
ORIGINS = {
    STUDIO_OWN: N_("Studio recording"),
    STUDIO_SHARED: N_("Studio recording shared by every hotline"),
    SYNTHESIZED: N_("Synthesized voice"),
    MISSING: N_("Not built yet"),
}
# UploadRefused.reason → what the clerk reads (values filled in).
REFUSALS = {
    "empty": N_("The file is empty."),
    "too_large": N_("The file is larger than {limit_mb} MB: export it as MP3 or shorten it."),
    "unknown_format": N_(
        "This is not a sound file this page knows: send WAV, MP3, Ogg/Opus, FLAC or M4A."
    ),
    "needs_ffmpeg": N_(
        "{format} files need ffmpeg on the server, which is not installed: send a WAV file."
    ),
    "undecodable": N_("The file says it is {format} but cannot be played: export it again."),
    "too_long": N_("The recording is longer than {limit} seconds."),
    "too_short": N_("The recording is too short to be a prompt."),
    "silent": N_("The recording is silent."),
    "no_file": N_("Choose a sound file to upload."),
}


@dataclass(frozen=True)
class PromptRow:
    """One prompt of a hotline in one language, as the list shows it."""

    name: str
    text: str  # what the prompt says (the catalogue's or the hotline's own text, filled in)
    origin: str  # a key of ORIGINS


def prompt_texts(config: HotlineConfig, hotline: Hotline, language: str) -> dict[str, str]:
    """Every prompt the hotline plays in ``language`` → its text, in catalogue
    order, then one per area (``area_<code>``): what a build writes."""
    catalog = load_catalog(CATALOG).with_texts(hotline.prompts)
    values = prompt_variables(config, hotline, language)
    texts: dict[str, str] = {}
    for name, entry in catalog.entries.items():
        text = entry.texts.get(language)
        if text is None or name == AREA_TEMPLATE:
            continue
        if ENGLISH_KEY_PLACEHOLDER in entry.placeholders(language) and (
            ENGLISH_KEY_PLACEHOLDER not in values
        ):
            continue  # the English offer of a hotline that has none
        texts[name] = text.format_map(values)
    template = catalog.entries.get(AREA_TEMPLATE)
    if template is not None and language in template.texts:
        for area in iter_areas(config.areas):
            texts[area_prompt_name(area.code)] = template.texts[language].format_map(
                {**values, AREA_PLACEHOLDER: area.name}
            )
    return texts


def origin_of(config: HotlineConfig, hotline_id: str, language: str, name: str) -> str:
    root = config.resolve_path(config.paths.prompts)
    if prompt_upload.own_recording(root, hotline_id, language, name) is not None:
        return STUDIO_OWN
    if prompt_upload.shared_recording(studio_roots(config), language, name) is not None:
        return STUDIO_SHARED
    if not prompt_upload.live_file(root, hotline_id, language, name).is_file():
        return MISSING
    return SYNTHESIZED


# --- what the URL names, checked ------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """A hotline and one of its prompt languages the user may manage."""

    hotline: Hotline
    language: str
    root: Path  # paths.prompts

    @property
    def url(self) -> str:
        return f"/admin/prompts/{self.hotline.id}/{self.language}"


async def _place(request: web.Request) -> Place | web.Response:
    """The hotline and language of the URL, or the refusal to send."""
    config = state_of(request).config
    hotline = config.hotline(request.match_info["hotline"])
    if hotline is None:
        return error_page(request, 404, "Not found")
    if not scope_of(request).sees_hotline(hotline.id):
        return await refuse(request, "prompts_refused", f"hotline:{hotline.id}")
    language = request.match_info["lang"]
    if language not in prompt_languages(hotline):
        return error_page(request, 404, "Not found")
    return Place(hotline, language, config.resolve_path(config.paths.prompts))


async def _prompt(request: web.Request, place: Place) -> str | None:
    """The prompt the URL names, if the hotline has it (else None: 404)."""
    name = request.match_info["name"]
    config = state_of(request).config
    texts = await asyncio.to_thread(prompt_texts, config, place.hotline, place.language)
    return name if name in texts else None


async def _staged(request: web.Request, place: Place) -> PendingUpload | None:
    """The staged upload the URL's token names, if it is for this hotline and
    language and for a prompt the hotline still has."""
    pending = prompt_upload.pending_upload(place.root, request.match_info["token"])
    if pending is None or (pending.hotline_id, pending.language) != (
        place.hotline.id, place.language,
    ):  # fmt: skip
        return None
    config = state_of(request).config
    texts = await asyncio.to_thread(prompt_texts, config, place.hotline, place.language)
    return pending if pending.name in texts else None


def _wav(path: Path) -> web.StreamResponse:
    if not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(
        path, headers={"Content-Type": "audio/wav", "Cache-Control": "no-store"}
    )


# --- pages ----------------------------------------------------------------------------


async def hotlines_page(request: web.Request) -> web.StreamResponse:
    """The hotlines whose prompts the user manages; straight to the only one."""
    config = state_of(request).config
    scope = scope_of(request)
    hotlines = [h for h in config.hotlines if scope.sees_hotline(h.id)]
    if len(hotlines) == 1:
        raise web.HTTPFound(f"/admin/prompts/{hotlines[0].id}/{hotlines[0].language}")
    return render(request, "admin_prompts_hotlines.html",
                  hotlines=[(h, prompt_languages(h)) for h in hotlines])  # fmt: skip


async def prompts_page(request: web.Request) -> web.StreamResponse:
    """Every prompt of the hotline in the language: text, sound, origin, actions."""
    place = await _place(request)
    if isinstance(place, web.Response):
        return place
    config = state_of(request).config
    try:
        texts = await asyncio.to_thread(prompt_texts, config, place.hotline, place.language)
    except CatalogError as exc:
        logger.error("prompt catalogue unreadable: %s", exc)
        return error_page(request, 503, "Unavailable", str(exc))
    rows = [
        PromptRow(name, text, origin_of(config, place.hotline.id, place.language, name))
        for name, text in texts.items()
    ]
    return render(
        request, "admin_prompts.html", place=place, rows=rows, origins=ORIGINS,
        languages=prompt_languages(place.hotline), notice=request.query.get("done", ""),
        notice_prompt=request.query.get("prompt", "") if request.query.get("prompt", "") in texts
        else "", accept=ACCEPT, limit_mb=prompt_upload.MAX_UPLOAD_BYTES // (1024 * 1024),
        limit_seconds=int(prompt_upload.MAX_SECONDS),
    )  # fmt: skip


async def prompt_audio(request: web.Request) -> web.StreamResponse:
    """The WAV callers hear now for the prompt."""
    place = await _place(request)
    if isinstance(place, web.Response):
        return place
    name = await _prompt(request, place)
    if name is None:
        return error_page(request, 404, "Not found")
    return _wav(prompt_upload.live_file(place.root, place.hotline.id, place.language, name))


async def upload(request: web.Request) -> web.StreamResponse:
    """Convert and stage an upload, then show the preview; a refused file
    changes nothing and the list says why."""
    place = await _place(request)
    if isinstance(place, web.Response):
        return place
    name = await _prompt(request, place)
    if name is None:
        return error_page(request, 404, "Not found")
    _ = translator(request[LANGUAGE])
    form = await request.post()  # already read whole (and size-limited) by the middleware
    field = form.get("recording")
    try:
        if not isinstance(field, web.FileField):
            raise UploadRefused("no_file")
        data = await asyncio.to_thread(field.file.read, prompt_upload.MAX_UPLOAD_BYTES + 1)
        converted = await asyncio.to_thread(prompt_upload.convert_upload, data, name)
    except UploadRefused as exc:
        target = f"prompt:{place.hotline.id}/{place.language}/{name}"
        await audit(request, "prompt_upload_refused", target, detail=exc.reason)
        message = _(REFUSALS.get(exc.reason, REFUSALS["undecodable"]), **exc.values)
        return render(request, "admin_prompt_refused.html", status=400, place=place,
                      name=name, message=message, accept=ACCEPT)  # fmt: skip
    pending = await asyncio.to_thread(
        prompt_upload.stage, place.root, converted, hotline_id=place.hotline.id,
        language=place.language, name=name, uploaded_by=user_of(request).username,
        original_name=field.filename or "",
    )  # fmt: skip
    await audit(request, "prompt_upload", f"prompt:{place.hotline.id}/{place.language}/{name}",
                detail=f"{pending.original_name} ({pending.source_format}, "
                f"{pending.seconds:.1f} s), staged")  # fmt: skip
    raise web.HTTPSeeOther(f"{place.url}/new/{pending.token}")


async def preview_page(request: web.Request) -> web.StreamResponse:
    """The current sound and the uploaded one, side by side, before going live."""
    place = await _place(request)
    if isinstance(place, web.Response):
        return place
    pending = await _staged(request, place)
    if pending is None:
        return error_page(request, 404, "Not found")
    name = pending.name
    config = state_of(request).config
    texts = await asyncio.to_thread(prompt_texts, config, place.hotline, place.language)
    return render(request, "admin_prompt_preview.html", place=place, name=name,
                  text=texts[name], pending=pending, origins=ORIGINS,
                  origin=origin_of(config, place.hotline.id, place.language, name))  # fmt: skip


async def preview_audio(request: web.Request) -> web.StreamResponse:
    place = await _place(request)
    if isinstance(place, web.Response):
        return place
    pending = await _staged(request, place)
    if pending is None:
        return error_page(request, 404, "Not found")
    return _wav(prompt_upload.pending_audio(place.root, pending))


async def confirm(request: web.Request) -> web.StreamResponse:
    """Make the staged upload live: the next call plays it."""
    place = await _place(request)
    if isinstance(place, web.Response):
        return place
    pending = await _staged(request, place)
    if pending is None:
        # Used already (a second click) or discarded: nothing to make live.
        return error_page(request, 404, "Not found")
    name = pending.name
    config = state_of(request).config
    await asyncio.to_thread(prompt_upload.make_live, place.root, pending)
    report = await asyncio.to_thread(
        build_one_prompt, config, place.hotline.id, place.language, name
    )
    target = f"prompt:{place.hotline.id}/{place.language}/{name}"
    await audit(request, "prompt_live", target,
                detail=f"{pending.original_name} ({pending.seconds:.1f} s), "
                f"uploaded by {pending.uploaded_by}")  # fmt: skip
    if report.failed:
        logger.error("prompt %s not rebuilt: %s", target, report.failed)
        return error_page(request, 500, "Unavailable", report.failed[0].reason)
    logger.info("studio prompt %s live (%s)", target, user_of(request).username)
    raise web.HTTPSeeOther(f"{place.url}?done=live&prompt={name}")


async def discard(request: web.Request) -> web.StreamResponse:
    """Drop a staged upload: nothing callers hear changes."""
    place = await _place(request)
    if isinstance(place, web.Response):
        return place
    pending = await _staged(request, place)
    if pending is None:
        raise web.HTTPSeeOther(place.url)
    await asyncio.to_thread(prompt_upload.discard, place.root, pending)
    raise web.HTTPSeeOther(f"{place.url}#prompt-{pending.name}")


async def remove_page(request: web.Request) -> web.StreamResponse:
    """Ask before the studio recording goes and the synthesized voice comes back."""
    place = await _place(request)
    if isinstance(place, web.Response):
        return place
    name = await _prompt(request, place)
    if name is None:
        return error_page(request, 404, "Not found")
    config = state_of(request).config
    if origin_of(config, place.hotline.id, place.language, name) != STUDIO_OWN:
        raise web.HTTPSeeOther(f"{place.url}#prompt-{name}")
    texts = await asyncio.to_thread(prompt_texts, config, place.hotline, place.language)
    return render(request, "admin_prompt_remove.html", place=place, name=name,
                  text=texts[name])  # fmt: skip


async def remove(request: web.Request) -> web.StreamResponse:
    """Remove the hotline's recording and rebuild the prompt with the synthesized voice."""
    place = await _place(request)
    if isinstance(place, web.Response):
        return place
    name = await _prompt(request, place)
    if name is None:
        return error_page(request, 404, "Not found")
    config = state_of(request).config
    removed = await asyncio.to_thread(
        prompt_upload.remove_recording, place.root, place.hotline.id, place.language, name
    )
    if not removed:  # a second click: already synthesized
        raise web.HTTPSeeOther(f"{place.url}#prompt-{name}")
    report = await asyncio.to_thread(
        build_one_prompt, config, place.hotline.id, place.language, name
    )
    target = f"prompt:{place.hotline.id}/{place.language}/{name}"
    await audit(request, "prompt_removed", target, detail="synthesized voice restored")
    if report.failed:
        logger.error("prompt %s not rebuilt: %s", target, report.failed)
        return error_page(request, 500, "Unavailable", report.failed[0].reason)
    raise web.HTTPSeeOther(f"{place.url}?done=removed&prompt={name}")


# Plain segments: each is looked up (the config's hotline, its prompt languages,
# its prompt list, a staged upload's token), never used as a path.
PLACE = "/admin/prompts/{hotline}/{lang}"
PROMPT = PLACE + "/{name}"
PREVIEW = PLACE + "/new/{token}"  # a staged upload; its token names the prompt
ROUTES = [
    Route("GET", "/admin/prompts", hotlines_page, WATCHERS, "prompts"),
    Route("GET", PLACE, prompts_page, WATCHERS, "prompts_list"),
    Route("GET", PROMPT + "/audio", prompt_audio, WATCHERS, "prompt_audio"),
    Route("POST", PROMPT + "/upload", upload, WATCHERS, "prompt_upload"),
    Route("GET", PREVIEW, preview_page, WATCHERS, "prompt_preview"),
    Route("GET", PREVIEW + "/audio", preview_audio, WATCHERS, "prompt_new_audio"),
    Route("POST", PREVIEW + "/confirm", confirm, WATCHERS, "prompt_confirm"),
    Route("POST", PREVIEW + "/discard", discard, WATCHERS, "prompt_discard"),
    Route("GET", PROMPT + "/remove", remove_page, WATCHERS, "prompt_remove_confirm"),
    Route("POST", PROMPT + "/remove", remove, WATCHERS, "prompt_remove"),
]
BODY_LIMITS = {"prompt_upload": UPLOAD_BODY_BYTES}
