"""The knowledge base service: search, read, write and cite articles.

Synchronous SQLAlchemy like the case service; the console calls it from its
database threads. Every change writes its audit row (:mod:`ivr.audit`) in the
same transaction, so an edit is never saved unaudited, and refreshes the folded
search columns, so search never sees stale text.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, literal, or_, select, true
from sqlalchemy.orm import Session, sessionmaker

from ivr.audit import AuditEntry
from ivr.cases.models import (
    ANSWERED,
    ASSIGNED,
    CLASSIFIED,
    CLOSED,
    IN_PROGRESS,
    RECEIVED,
    Case,
    CaseEvent,
)
from ivr.cases.service import CaseError, CaseService
from ivr.db.models import utc_now
from ivr.knowledge.folding import fold, search_words
from ivr.knowledge.models import TEXT_FIELDS, Article

logger = logging.getLogger(__name__)

TITLE_LIMIT = 255
TEXT_LIMIT = 8000
SEARCH_LIMIT = 20
# The case event that cites the article an answer came from.
KNOWLEDGE_ANSWER = "knowledge_answer"


class KnowledgeError(ValueError):
    """A request the knowledge base refuses; the message says why."""


class ArticleNotFound(KnowledgeError):
    """No such article."""


class OutsideScope(KnowledgeError):
    """The article belongs to a hotline this user may not read (or is not
    published and the user is an agent); the console answers 403, as it does
    for another hotline's case."""


class NotEditable(OutsideScope):
    """This user may not write the article: it belongs to another hotline, or
    is shared and the user is one hotline's supervisor, or the user is an agent."""


@dataclass(frozen=True)
class KnowledgeScope:
    """Whose articles one user reads and edits.

    Agents read their hotline's published articles and the shared ones.
    Supervisors and administrators also read unpublished ones; one limited to a
    hotline edits that hotline's articles only (shared ones are read-only to
    them), an unrestricted one edits every article."""

    hotline_id: str | None
    all_hotlines: bool
    editor: bool

    def readable(self) -> ColumnElement[bool]:
        owner = (
            true()
            if self.all_hotlines
            else or_(Article.hotline_id.is_(None), Article.hotline_id == self.hotline_id)
        )
        return owner if self.editor else and_(owner, Article.published.is_(True))

    def may_read(self, article: Article) -> bool:
        if not (self.editor or article.published):
            return False
        return self.all_hotlines or article.hotline_id in (None, self.hotline_id)

    def may_edit(self, hotline_id: str | None) -> bool:
        """May this user write an article owned by ``hotline_id`` (None: shared)?"""
        if not self.editor:
            return False
        return self.all_hotlines or (hotline_id is not None and hotline_id == self.hotline_id)


# What can be wrong with a field or a CSV row, by kind: English here, and the
# same texts translated in the console (ivr/web/knowledge.py, PROBLEM_TEXTS).
PROBLEM_TEXTS: Mapping[str, str] = {
    "empty": "is empty",
    "no_answer": "is empty (it is the answer read to the citizen)",
    "too_long": "is longer than {limit} characters",
}


@dataclass(frozen=True)
class FieldProblem:
    """One thing to fix in one field; ``values`` fill the kind's text."""

    field: str
    kind: str
    values: Mapping[str, object] = dataclasses.field(default_factory=dict)

    @property
    def message(self) -> str:
        return PROBLEM_TEXTS[self.kind].format(**self.values)


@dataclass(frozen=True)
class ArticleDraft:
    """An article's fields as written by a supervisor or a CSV row."""

    title: str
    summary: str
    documents: str = ""
    fees: str = ""
    place: str = ""
    processing_time: str = ""
    legal_basis: str = ""
    topic: str | None = None
    hotline_id: str | None = None
    published: bool = True

    def problems(self) -> list[FieldProblem]:
        """What a supervisor must fix, field by field."""
        found: list[FieldProblem] = []
        if not self.title.strip():
            found.append(FieldProblem("title", "empty"))
        elif len(self.title) > TITLE_LIMIT:
            found.append(FieldProblem("title", "too_long", {"limit": TITLE_LIMIT}))
        if not self.summary.strip():
            found.append(FieldProblem("summary", "no_answer"))
        for name in TEXT_FIELDS:
            if len(getattr(self, name)) > TEXT_LIMIT:
                found.append(FieldProblem(name, "too_long", {"limit": TEXT_LIMIT}))
        return found

    def check(self) -> None:
        problems = self.problems()
        if problems:
            raise KnowledgeError("; ".join(f"{p.field} {p.message}" for p in problems))


def _write(article: Article, draft: ArticleDraft, actor: str, now: datetime) -> None:
    for item in fields(ArticleDraft):
        value = getattr(draft, item.name)
        setattr(article, item.name, value.strip() if isinstance(value, str) else value)
    article.folded_title = fold(article.title)[:TITLE_LIMIT]
    article.folded_text = " ".join(
        fold(text) for text in (article.title, *(getattr(article, n) for n in TEXT_FIELDS))
    )
    article.updated_at = now
    article.updated_by = actor


class KnowledgeBase:
    def __init__(
        self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._sessions = sessions
        self._clock = clock

    # --- reading -------------------------------------------------------------------

    def search(
        self,
        query: str,
        scope: KnowledgeScope,
        *,
        topic: str | None = None,
        limit: int = SEARCH_LIMIT,
    ) -> list[Article]:
        """Articles containing every word of ``query``, accents and case aside
        ("can cuoc" finds "Căn cước"); those with more of the words in their
        title first, then by title. No words: every readable article by title."""
        words = search_words(query)
        statement = select(Article).where(scope.readable())
        if topic:
            statement = statement.where(Article.topic == topic)
        # Folded words are [0-9a-z] only: nothing in them is a LIKE wildcard.
        for word in words:
            statement = statement.where(Article.folded_text.like(f"%{word}%"))
        if words:
            in_title = sum(
                (case((Article.folded_title.like(f"%{w}%"), 1), else_=0) for w in words),
                start=literal(0),
            )
            statement = statement.order_by(in_title.desc())
        statement = statement.order_by(Article.folded_title, Article.id).limit(limit)
        with self._sessions() as session:
            return list(session.scalars(statement))

    def get(self, article_id: int, scope: KnowledgeScope) -> Article:
        with self._sessions() as session:
            article = session.get(Article, article_id)
        if article is None:
            raise ArticleNotFound(f"no article {article_id}")
        if not scope.may_read(article):
            raise OutsideScope(f"article {article_id} is outside your hotline")
        return article

    # --- writing -------------------------------------------------------------------

    def create(
        self, draft: ArticleDraft, *, actor: str, scope: KnowledgeScope, address: str = ""
    ) -> Article:
        draft.check()
        if not scope.may_edit(draft.hotline_id):
            raise NotEditable(f"you may not write articles of {_owner(draft.hotline_id)}")
        now = self._clock()
        with self._sessions.begin() as session:
            article = Article(created_at=now)
            _write(article, draft, actor, now)
            session.add(article)
            session.flush()
            _audit(session, actor, "kb_create", article, address, now)
        return article

    def update(
        self,
        article_id: int,
        draft: ArticleDraft,
        *,
        actor: str,
        scope: KnowledgeScope,
        address: str = "",
    ) -> Article:
        draft.check()
        now = self._clock()
        with self._sessions.begin() as session:
            article = self._editable(session, article_id, scope)
            # Moving an article to another owner needs the right to write both.
            if not scope.may_edit(draft.hotline_id):
                raise NotEditable(f"you may not write articles of {_owner(draft.hotline_id)}")
            was_published = article.published
            _write(article, draft, actor, now)
            action = "kb_edit"
            if was_published and not article.published:
                action = "kb_unpublish"
            elif article.published and not was_published:
                action = "kb_publish"
            _audit(session, actor, action, article, address, now)
        return article

    def set_published(
        self,
        article_id: int,
        published: bool,
        *,
        actor: str,
        scope: KnowledgeScope,
        address: str = "",
    ) -> Article:
        now = self._clock()
        with self._sessions.begin() as session:
            article = self._editable(session, article_id, scope)
            article.published = published
            article.updated_at, article.updated_by = now, actor
            _audit(session, actor, "kb_publish" if published else "kb_unpublish", article,
                   address, now)  # fmt: skip
        return article

    def import_drafts(
        self,
        drafts: Sequence[ArticleDraft],
        *,
        actor: str,
        scope: KnowledgeScope,
        address: str = "",
        source: str = "",
    ) -> tuple[int, int]:
        """Write every draft in one transaction: all or nothing. A draft whose
        title (accents aside) and owner match an article updates it, so
        importing a corrected file again does not duplicate articles.
        Returns (created, updated)."""
        for draft in drafts:
            draft.check()
            if not scope.may_edit(draft.hotline_id):
                raise NotEditable(f"you may not write articles of {_owner(draft.hotline_id)}")
        now = self._clock()
        created = updated = 0
        with self._sessions.begin() as session:
            # One read of every (owner, folded title) rather than a query per row:
            # a file of a few thousand articles imports in seconds, not minutes.
            known: dict[tuple[str | None, str], int | Article] = {
                (row.hotline_id, row.folded_title): row.id
                for row in session.execute(
                    select(Article.id, Article.hotline_id, Article.folded_title)
                )
            }
            for draft in drafts:
                key = (draft.hotline_id, fold(draft.title)[:TITLE_LIMIT])
                found = known.get(key)
                article = session.get(Article, found) if isinstance(found, int) else found
                if article is None:
                    article = Article(created_at=now)
                    session.add(article)
                    known[key] = article
                    created += 1
                else:
                    updated += 1
                _write(article, draft, actor, now)
            session.add(
                AuditEntry(
                    at=now, actor=actor, action="kb_import", target=source[:255],
                    detail=f"{created} created, {updated} updated", address=address[:64],
                )
            )  # fmt: skip
        return created, updated

    # --- answering a case ------------------------------------------------------------

    def answer_case(
        self,
        cases: CaseService,
        code: str,
        article_id: int,
        *,
        actor: str,
        scope: KnowledgeScope,
        excerpt: str = "",
    ) -> Case:
        """Answer a case on the spot from an article and close it.

        The answer is ``excerpt`` (what the agent chose to keep) or else the
        article's summary; it is texted to the citizen as any answer is (the
        case service's ``answered`` step). A case event cites the article."""
        article = self.get(article_id, scope)
        if not article.published:
            raise KnowledgeError(f"article {article_id} is not published")
        answer = excerpt.strip() or article.summary
        with self._sessions() as session:
            found = session.scalar(select(Case).where(Case.code == code))
        if found is None:
            raise ArticleNotFound(f"no case with code {code!r}")
        if article.hotline_id is not None and article.hotline_id != found.hotline_id:
            raise KnowledgeError(
                f"article {article_id} belongs to hotline {article.hotline_id}, "
                f"case {code} to {found.hotline_id}"
            )
        # Answered on the spot: the steps an answer normally goes through, in a row.
        if found.status in (RECEIVED, CLASSIFIED):
            cases.change_status(code, IN_PROGRESS, actor, "answered from the knowledge base")
        elif found.status not in (ASSIGNED, IN_PROGRESS):
            raise CaseError(f"case {code} is {found.status}: it cannot be answered now")
        cases.change_status(code, ANSWERED, actor, answer)
        with self._sessions.begin() as session:
            session.add(
                CaseEvent(
                    case_id=found.id, at=self._clock(), actor=actor, action=KNOWLEDGE_ANSWER,
                    note=f"article {article.id}: {article.title}"
                    + ("" if answer == article.summary else " (excerpt)"),
                )
            )  # fmt: skip
        return cases.change_status(code, CLOSED, actor, f"knowledge base article {article.id}")

    # --- internals -------------------------------------------------------------------

    def _editable(self, session: Session, article_id: int, scope: KnowledgeScope) -> Article:
        article = session.get(Article, article_id, with_for_update=True)
        if article is None:
            raise ArticleNotFound(f"no article {article_id}")
        if not scope.may_edit(article.hotline_id):
            raise NotEditable(f"article {article_id} is {_owner(article.hotline_id)}'s: read only")
        return article


def _owner(hotline_id: str | None) -> str:
    return f"hotline {hotline_id}" if hotline_id else "every hotline (shared)"


def _audit(
    session: Session, actor: str, action: str, article: Article, address: str, now: datetime
) -> None:
    session.add(
        AuditEntry(
            at=now, actor=actor, action=action, target=f"article {article.id}",
            detail=article.title, address=address[:64],
        )
    )  # fmt: skip
