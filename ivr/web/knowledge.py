"""The knowledge base in the console: search and read articles (every staff
role; agents from their console during a call, through the JSON search),
write, unpublish and import them (supervisors and administrators, each within
their hotline), and answer a case on the spot from an article.

Who reads and writes what is :class:`ivr.knowledge.service.KnowledgeScope`,
built here from the user's :class:`ivr.web.access.AccessScope`; the service
enforces it and audits every change."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ivr.cases.service import CaseError
from ivr.knowledge.csv_import import CsvImportError, CsvProblem, decode, parse_articles
from ivr.knowledge.models import Article
from ivr.knowledge.service import (
    ArticleDraft,
    ArticleNotFound,
    KnowledgeBase,
    KnowledgeError,
    KnowledgeScope,
    NotEditable,
    OutsideScope,
)
from ivr.web import store
from ivr.web.i18n import N_, translator
from ivr.web.models import ADMIN, SUPERVISOR
from ivr.web.rendering import done, error_page, form_or_json, refuse, render, wants_json
from ivr.web.state import (
    LANGUAGE,
    STAFF,
    WATCHERS,
    Route,
    address_of,
    audit,
    db,
    scope_of,
    state_of,
    user_of,
)

logger = logging.getLogger(__name__)

IMPORT_LIMIT = 5 * 1024 * 1024  # a few thousand articles fit in far less

# The texts of ivr.knowledge.csv_import.CSV_PROBLEM_TEXTS, written here so that
# extraction puts them in the catalogue (tests/test_knowledge_web.py checks the
# two lists agree): a supervisor reads each bad row's problem in Vietnamese.
PROBLEM_TEXTS = {
    "empty": N_("is empty"),
    "no_answer": N_("is empty (it is the answer read to the citizen)"),
    "too_long": N_("is longer than {limit} characters"),
    "not_utf8": N_("not UTF-8 text (save the file as CSV UTF-8)"),
    "no_rows": N_("the file is empty"),
    "unreadable": N_("unreadable CSV: {detail}"),
    "unknown_column": N_("unknown column; known: {known}"),
    "twice": N_("column given twice"),
    "missing_column": N_("the header has no {name} column"),
    "extra_fields": N_("{count} fields; the header has {expected}"),
    "unknown_hotline": N_("unknown hotline {value}; known: {known}"),
    "unknown_topic": N_("unknown topic {value}; known: {known}"),
    "yes_or_no": N_("{value}: write yes or no"),
    "same_title": N_("the same title as line {line}"),
    "too_many": N_("more than {limit} articles in one file"),
}


def describe(problem: CsvProblem, language: str) -> str:
    """One bad row's problem, with its line and column, in the user's language."""
    _ = translator(language)
    text = _(PROBLEM_TEXTS[problem.kind], **problem.values)
    if problem.column:
        return _("line {line}, column {column} ({field}): {problem}", line=problem.line,
                 column=problem.column, field=problem.field, problem=text)  # fmt: skip
    return _("line {line}: {problem}", line=problem.line, problem=text)


def knowledge_scope(request: web.Request) -> KnowledgeScope:
    scope = scope_of(request)
    return KnowledgeScope(
        hotline_id=scope.hotline_id,
        all_hotlines=scope.sees_everything,
        editor=scope.role in (SUPERVISOR, ADMIN),
    )


def knowledge_of(request: web.Request) -> KnowledgeBase:
    # Stateless over the session factory: one per request costs nothing.
    return KnowledgeBase(state_of(request).sessions)


def article_json(article: Article, *, full: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": article.id,
        "title": article.title,
        "summary": article.summary,
        "topic": article.topic,
        "hotline_id": article.hotline_id,
        "published": article.published,
    }
    if full:
        data.update(
            documents=article.documents,
            fees=article.fees,
            place=article.place,
            processing_time=article.processing_time,
            legal_basis=article.legal_basis,
            updated_by=article.updated_by,
            updated_at=article.updated_at.isoformat(),
        )
    return data


def _problem(request: web.Request, status: int, message: str) -> web.Response:
    title = {400: "Bad request", 404: "Not found"}.get(status, "Bad request")
    if wants_json(request):
        return web.json_response({"ok": False, "error": message}, status=status)
    return error_page(request, status, title, message)


async def knowledge_page(request: web.Request) -> web.Response:
    """The list, searched by ``q`` (accents optional) and ``topic``."""
    query = request.query.get("q", "")[:200]
    topic = request.query.get("topic", "")[:64] or None
    scope = knowledge_scope(request)
    articles = await db(knowledge_of(request).search, query, scope, topic=topic,
                        limit=20 if request.path.startswith("/api/") else 200)  # fmt: skip
    if request.path.startswith("/api/"):
        return web.json_response([article_json(a) for a in articles])
    return render(
        request, "knowledge.html", **_list_context(request, scope, articles, query, topic)
    )


def _list_context(
    request: web.Request,
    scope: KnowledgeScope,
    articles: list[Article],
    query: str = "",
    topic: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "articles": articles, "query": query, "topic": topic or "",
        "topics": state_of(request).config.cases.topics, "editor": scope.editor,
        "editable": {a.id for a in articles if scope.may_edit(a.hotline_id)},
        "import_problems": [], "import_result": "", **extra,
    }  # fmt: skip


async def article_page(request: web.Request) -> web.Response:
    scope = knowledge_scope(request)
    article_id = int(request.match_info["article_id"])
    try:
        article = await db(knowledge_of(request).get, article_id, scope)
    except ArticleNotFound as exc:
        return _problem(request, 404, str(exc))
    except OutsideScope:
        return await refuse(request, "kb_read_refused", f"article {article_id}")
    if request.path.startswith("/api/"):
        return web.json_response(
            {**article_json(article, full=True), "editable": scope.may_edit(article.hotline_id)}
        )
    return render(request, "knowledge_article.html", article=article,
                  editable=scope.may_edit(article.hotline_id))  # fmt: skip


def _owners(request: web.Request, scope: KnowledgeScope) -> list[tuple[str, str]]:
    """(hotline id or "", label) the user may give an article; "" is shared."""
    config = state_of(request).config
    owners = [(h.id, h.name) for h in config.hotlines if scope.may_edit(h.id)]
    return [("", ""), *owners] if scope.may_edit(None) else owners


async def edit_page(request: web.Request) -> web.Response:
    """The form: empty for a new article, filled for an existing one."""
    scope = knowledge_scope(request)
    article: Article | None = None
    if "article_id" in request.match_info:
        article_id = int(request.match_info["article_id"])
        try:
            article = await db(knowledge_of(request).get, article_id, scope)
        except ArticleNotFound as exc:
            return _problem(request, 404, str(exc))
        except OutsideScope:
            return await refuse(request, "kb_edit_refused", f"article {article_id}")
        if not scope.may_edit(article.hotline_id):
            return await refuse(request, "kb_edit_refused", f"article {article_id}")
    return render(request, "knowledge_edit.html", article=article, owners=_owners(request, scope),
                  topics=state_of(request).config.cases.topics)  # fmt: skip


def _draft(form: dict[str, str], scope: KnowledgeScope) -> ArticleDraft:
    hotline = form.get("hotline_id", "").strip() or None
    if hotline is None and not scope.may_edit(None):
        hotline = scope.hotline_id  # a hotline's supervisor writes their hotline's
    return ArticleDraft(
        title=form.get("title", "")[:300],
        summary=form.get("summary", "")[:9000],
        documents=form.get("documents", "")[:9000],
        fees=form.get("fees", "")[:9000],
        place=form.get("place", "")[:9000],
        processing_time=form.get("processing_time", "")[:9000],
        legal_basis=form.get("legal_basis", "")[:9000],
        topic=form.get("topic", "").strip() or None,
        hotline_id=hotline,
        published=form.get("published", "").lower() in ("1", "true", "on", "yes"),
    )


async def save_article(request: web.Request) -> web.StreamResponse:
    """Create (no id in the path) or update an article; ``published`` absent
    or false unpublishes it. Audited by the service."""
    state = state_of(request)
    scope = knowledge_scope(request)
    user = user_of(request)
    form = await form_or_json(request)
    draft = _draft(form, scope)
    if draft.hotline_id is not None and state.config.hotline(draft.hotline_id) is None:
        return _problem(request, 400, f"no hotline {draft.hotline_id!r} in the config")
    if draft.topic is not None and draft.topic not in {t.code for t in state.config.cases.topics}:
        return _problem(request, 400, f"unknown topic {draft.topic!r}")
    knowledge = knowledge_of(request)
    address = address_of(request)
    target = request.match_info.get("article_id")
    try:
        if target is None:
            article = await db(knowledge.create, draft, actor=user.username, scope=scope,
                               address=address)  # fmt: skip
        else:
            article = await db(knowledge.update, int(target), draft, actor=user.username,
                               scope=scope, address=address)  # fmt: skip
    except ArticleNotFound as exc:
        return _problem(request, 404, str(exc))
    except NotEditable:
        return await refuse(request, "kb_edit_refused", f"article {target or 'new'}")
    except KnowledgeError as exc:
        return _problem(request, 400, str(exc))
    return done(request, f"/knowledge/{article.id}", id=article.id,
                article=article_json(article, full=True))  # fmt: skip


async def import_articles(request: web.Request) -> web.StreamResponse:
    """A CSV upload (field ``file``): every row imported, or none and each bad
    row shown with its line and column."""
    state = state_of(request)
    scope = knowledge_scope(request)
    user = user_of(request)
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        return _problem(request, 400, "choose a CSV file to import")
    data = upload.file.read(IMPORT_LIMIT + 1)
    if len(data) > IMPORT_LIMIT:
        return _problem(request, 400, f"the file is larger than {IMPORT_LIMIT // 1024 // 1024} MB")
    source = (upload.filename or "CSV")[:128]
    owners = [h for h, _ in _owners(request, scope) if h]
    try:
        drafts = parse_articles(
            decode(data, source),
            source=source,
            # Rows without an owner: a hotline's supervisor's hotline, else shared.
            default_hotline=None if scope.may_edit(None) else scope.hotline_id,
            hotlines=owners,
            topics={t.code for t in state.config.cases.topics},
        )
        created, updated = await db(
            knowledge_of(request).import_drafts, drafts, actor=user.username, scope=scope,
            address=address_of(request), source=source,
        )  # fmt: skip
    except CsvImportError as exc:
        if wants_json(request):
            problems = [str(p) for p in exc.problems]
            return web.json_response({"ok": False, "problems": problems}, status=400)
        problems = [describe(p, request[LANGUAGE]) for p in exc.problems]
        articles = await db(knowledge_of(request).search, "", scope, limit=200)
        context = _list_context(request, scope, articles, import_problems=problems)
        return render(request, "knowledge.html", status=400, **context)
    except NotEditable:
        return await refuse(request, "kb_import_refused", source)
    except KnowledgeError as exc:
        return _problem(request, 400, str(exc))
    return done(request, "/knowledge", created=created, updated=updated)


async def answer_from_article(request: web.Request) -> web.StreamResponse:
    """Answer a case from an article (``article_id``; ``answer``: the excerpt
    kept, else the article's summary) and close it; the citizen gets the
    answer by SMS as for any answer."""
    state = state_of(request)
    user = user_of(request)
    code = request.match_info["code"][:16]
    if not await db(store.case_visible, state.sessions, scope_of(request), code):
        return await refuse(request, "knowledge_answer_refused", f"case {code}")
    form = await form_or_json(request)
    try:
        article_id = int(form.get("article_id", ""))
    except ValueError:
        return _problem(request, 400, "article_id: give the article's number")
    try:
        case = await db(
            knowledge_of(request).answer_case, state.cases, code, article_id,
            actor=user.username, scope=knowledge_scope(request),
            excerpt=form.get("answer", "")[:4000],
        )  # fmt: skip
    except ArticleNotFound as exc:
        return _problem(request, 404, str(exc))
    except OutsideScope:
        return await refuse(request, "knowledge_answer_refused", f"article {article_id}")
    except (KnowledgeError, CaseError) as exc:
        return _problem(request, 400, str(exc))
    await audit(request, "knowledge_answer", f"case {code}", detail=f"article {article_id}")
    return done(request, f"/cases/{code}", code=code, status=case.status, article_id=article_id)


ARTICLE = r"/{article_id:\d+}"

ROUTES = [
    Route("GET", "/knowledge", knowledge_page, STAFF, "knowledge"),
    Route("GET", "/api/v1/knowledge", knowledge_page, STAFF, "knowledge_api"),
    Route("GET", "/knowledge/new", edit_page, WATCHERS, "new_article"),
    Route("POST", "/knowledge", save_article, WATCHERS, "add_article"),
    Route("POST", "/api/v1/knowledge", save_article, WATCHERS, "add_article_api"),
    Route("POST", "/knowledge/import", import_articles, WATCHERS, "import_articles"),
    Route("GET", "/knowledge" + ARTICLE, article_page, STAFF, "article"),
    Route("GET", "/api/v1/knowledge" + ARTICLE, article_page, STAFF, "article_api"),
    Route("GET", "/knowledge" + ARTICLE + "/edit", edit_page, WATCHERS, "edit_article"),
    Route("POST", "/knowledge" + ARTICLE, save_article, WATCHERS, "update_article"),
    Route("POST", "/api/v1/knowledge" + ARTICLE, save_article, WATCHERS, "update_article_api"),
    Route("POST", "/cases/{code}/knowledge-answer", answer_from_article, STAFF, "kb_answer"),
    Route(
        "POST", "/api/v1/cases/{code}/knowledge-answer", answer_from_article, STAFF, "kb_answer_api"
    ),
]
