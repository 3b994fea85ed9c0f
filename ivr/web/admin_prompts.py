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
from ivr.prompt_upload import ConvertedPrompt, PendingUpload, UploadRefused
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
    """A hotline and one of its prompt languages the user may manage, with the
    config they were found in: every later step of the request reads that one."""

    config: HotlineConfig
    hotline: Hotline
    language: str

    @property
    def url(self) -> str:
        return f"/admin/prompts/{self.hotline.id}/{self.language}"

    @property
    def root(self) -> Path:
        """Where the prompts are built and studio recordings kept (paths.prompts)."""
        return self.config.resolve_path(self.config.paths.prompts)

    async def texts(self) -> dict[str, str]:
        """:func:`prompt_texts` for the place, off the event loop (it reads the catalogue)."""
        return await asyncio.to_thread(prompt_texts, self.config, self.hotline, self.language)

    def origin(self, name: str) -> str:
        return origin_of(self.config, self.hotline.id, self.language, name)


@dataclass(frozen=True)
class Prompt:
    """One prompt of a place, named by the URL and found in the place's prompt list."""

    place: Place
    name: str
    text: str

    @property
    def target(self) -> str:
        """What the audit log names it by."""
        return f"prompt:{self.place.hotline.id}/{self.place.language}/{self.name}"

    @property
    def row_url(self) -> str:
        """The list, scrolled to the prompt's row."""
        return f"{self.place.url}#prompt-{self.name}"

    def done_url(self, done: str) -> str:
        """The list with the notice of what was just ``done`` to the prompt."""
        return f"{self.place.url}?done={done}&prompt={self.name}"

    async def rebuild_and_audit(
        self, request: web.Request, action: str, detail: str
    ) -> web.Response | None:
        """Build the file callers hear from the prompt's source as it is now,
        and audit the change that called for it (whether or not the build
        worked); the error page to send if the build failed."""
        report = await asyncio.to_thread(
            build_one_prompt, self.place.config, self.place.hotline.id, self.place.language,
            self.name,
        )  # fmt: skip
        await audit(request, action, self.target, detail=detail)
        if report.failed:
            logger.error("prompt %s not rebuilt: %s", self.target, report.failed)
            return error_page(request, 500, "Unavailable", report.failed[0].reason)
        return None


@dataclass(frozen=True)
class Staged:
    """An upload staged for one of the place's prompts, not live yet."""

    prompt: Prompt
    pending: PendingUpload


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
    return Place(config, hotline, language)


async def _prompt(request: web.Request) -> Prompt | web.Response:
    """The prompt the URL names, if the hotline plays it, or the refusal to send."""
    place = await _place(request)
    if isinstance(place, web.Response):
        return place
    name = request.match_info["name"]
    texts = await place.texts()
    if name not in texts:
        return error_page(request, 404, "Not found")
    return Prompt(place, name, texts[name])


async def _staged_in(request: web.Request, place: Place) -> Staged | None:
    """The staged upload the URL's token names, if it is for this hotline and
    language and for a prompt the hotline still has."""
    pending = prompt_upload.pending_upload(place.root, request.match_info["token"])
    if pending is None or (pending.hotline_id, pending.language) != (
        place.hotline.id, place.language,
    ):  # fmt: skip
        return None
    texts = await place.texts()
    if pending.name not in texts:
        return None
    return Staged(Prompt(place, pending.name, texts[pending.name]), pending)


async def _staged(request: web.Request) -> Staged | web.Response:
    """The staged upload of the URL, or the refusal to send: 404 for one made
    live already (a second click), discarded, or not this place's."""
    place = await _place(request)
    if isinstance(place, web.Response):
        return place
    staged = await _staged_in(request, place)
    return error_page(request, 404, "Not found") if staged is None else staged


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
    try:
        texts = await place.texts()
    except CatalogError as exc:
        logger.error("prompt catalogue unreadable: %s", exc)
        return error_page(request, 503, "Unavailable", str(exc))
    rows = [PromptRow(name, text, place.origin(name)) for name, text in texts.items()]
    return render(
        request, "admin_prompts.html", place=place, rows=rows, origins=ORIGINS,
        languages=prompt_languages(place.hotline), notice=request.query.get("done", ""),
        notice_prompt=request.query.get("prompt", "") if request.query.get("prompt", "") in texts
        else "", accept=ACCEPT, limit_mb=prompt_upload.MAX_UPLOAD_BYTES // (1024 * 1024),
        limit_seconds=int(prompt_upload.MAX_SECONDS),
    )  # fmt: skip


async def prompt_audio(request: web.Request) -> web.StreamResponse:
    """The WAV callers hear now for the prompt."""
    prompt = await _prompt(request)
    if isinstance(prompt, web.Response):
        return prompt
    place = prompt.place
    return _wav(prompt_upload.live_file(place.root, place.hotline.id, place.language, prompt.name))


async def _converted(request: web.Request, prompt: Prompt) -> tuple[web.FileField, ConvertedPrompt]:
    """The posted file and its sound as the WAV callers would hear; raises
    :class:`UploadRefused` for no file or one that cannot be a prompt."""
    field = (await request.post()).get("recording")  # read whole (size-limited) by the middleware
    if not isinstance(field, web.FileField):
        raise UploadRefused("no_file")
    data = await asyncio.to_thread(field.file.read, prompt_upload.MAX_UPLOAD_BYTES + 1)
    return field, await asyncio.to_thread(prompt_upload.convert_upload, data, prompt.name)


async def upload(request: web.Request) -> web.StreamResponse:
    """Convert and stage an upload, then show the preview; a refused file
    changes nothing and the list says why."""
    prompt = await _prompt(request)
    if isinstance(prompt, web.Response):
        return prompt
    place = prompt.place
    try:
        field, converted = await _converted(request, prompt)
    except UploadRefused as exc:
        await audit(request, "prompt_upload_refused", prompt.target, detail=exc.reason)
        _ = translator(request[LANGUAGE])
        message = _(REFUSALS.get(exc.reason, REFUSALS["undecodable"]), **exc.values)
        return render(request, "admin_prompt_refused.html", status=400, place=place,
                      name=prompt.name, message=message, accept=ACCEPT)  # fmt: skip
    pending = await asyncio.to_thread(
        prompt_upload.stage, place.root, converted, hotline_id=place.hotline.id,
        language=place.language, name=prompt.name, uploaded_by=user_of(request).username,
        original_name=field.filename or "",
    )  # fmt: skip
    await audit(request, "prompt_upload", prompt.target,
                detail=f"{pending.original_name} ({pending.source_format}, "
                f"{pending.seconds:.1f} s), staged")  # fmt: skip
    raise web.HTTPSeeOther(f"{place.url}/new/{pending.token}")


async def preview_page(request: web.Request) -> web.StreamResponse:
    """The current sound and the uploaded one, side by side, before going live."""
    staged = await _staged(request)
    if isinstance(staged, web.Response):
        return staged
    prompt = staged.prompt
    return render(request, "admin_prompt_preview.html", place=prompt.place, name=prompt.name,
                  text=prompt.text, pending=staged.pending, origins=ORIGINS,
                  origin=prompt.place.origin(prompt.name))  # fmt: skip


async def preview_audio(request: web.Request) -> web.StreamResponse:
    staged = await _staged(request)
    if isinstance(staged, web.Response):
        return staged
    return _wav(prompt_upload.pending_audio(staged.prompt.place.root, staged.pending))


async def confirm(request: web.Request) -> web.StreamResponse:
    """Make the staged upload live: the next call plays it."""
    staged = await _staged(request)
    if isinstance(staged, web.Response):
        return staged
    prompt, pending = staged.prompt, staged.pending
    await asyncio.to_thread(prompt_upload.make_live, prompt.place.root, pending)
    failed = await prompt.rebuild_and_audit(
        request, "prompt_live",
        f"{pending.original_name} ({pending.seconds:.1f} s), uploaded by {pending.uploaded_by}",
    )  # fmt: skip
    if failed is not None:
        return failed
    logger.info("studio prompt %s live (%s)", prompt.target, user_of(request).username)
    raise web.HTTPSeeOther(prompt.done_url("live"))


async def discard(request: web.Request) -> web.StreamResponse:
    """Drop a staged upload: nothing callers hear changes."""
    place = await _place(request)
    if isinstance(place, web.Response):
        return place
    staged = await _staged_in(request, place)
    if staged is None:  # gone already: the list is where the clerk was going
        raise web.HTTPSeeOther(place.url)
    await asyncio.to_thread(prompt_upload.discard, place.root, staged.pending)
    raise web.HTTPSeeOther(staged.prompt.row_url)


async def remove_page(request: web.Request) -> web.StreamResponse:
    """Ask before the studio recording goes and the synthesized voice comes back."""
    prompt = await _prompt(request)
    if isinstance(prompt, web.Response):
        return prompt
    if prompt.place.origin(prompt.name) != STUDIO_OWN:
        raise web.HTTPSeeOther(prompt.row_url)
    return render(request, "admin_prompt_remove.html", place=prompt.place, name=prompt.name,
                  text=prompt.text)  # fmt: skip


async def remove(request: web.Request) -> web.StreamResponse:
    """Remove the hotline's recording and rebuild the prompt with the synthesized voice."""
    prompt = await _prompt(request)
    if isinstance(prompt, web.Response):
        return prompt
    place = prompt.place
    removed = await asyncio.to_thread(
        prompt_upload.remove_recording, place.root, place.hotline.id, place.language, prompt.name
    )
    if not removed:  # a second click: already synthesized
        raise web.HTTPSeeOther(prompt.row_url)
    failed = await prompt.rebuild_and_audit(request, "prompt_removed", "synthesized voice restored")
    if failed is not None:
        return failed
    raise web.HTTPSeeOther(prompt.done_url("removed"))


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
