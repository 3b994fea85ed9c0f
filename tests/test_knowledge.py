"""The knowledge base without the console: Vietnamese folding, CSV parsing
(line and column of each bad row), accent-insensitive all-words search with
title matches first, the owners' rights, an all-or-nothing import, the table
as the migration creates it, and a case answered on the spot from an article."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from ivr.audit import AuditEntry
from ivr.cases.models import CLOSED, Case, SmsMessage
from ivr.cases.service import CaseService
from ivr.config import HotlineConfig, load_config
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.registry import Base
from ivr.knowledge.csv_import import CsvImportError, decode, parse_articles
from ivr.knowledge.folding import fold, search_words
from ivr.knowledge.models import Article
from ivr.knowledge.service import (
    KNOWLEDGE_ANSWER,
    ArticleDraft,
    KnowledgeBase,
    KnowledgeError,
    KnowledgeScope,
    NotEditable,
)
from tests.test_tenancy import A, B, write_config

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "examples" / "knowledge-base.csv"
HEADER = "title,summary,fees,hotline,published\n"

EVERYTHING = KnowledgeScope(hotline_id=None, all_hotlines=True, editor=True)
SUPERVISOR_A = KnowledgeScope(hotline_id=A, all_hotlines=False, editor=True)
AGENT_A = KnowledgeScope(hotline_id=A, all_hotlines=False, editor=False)
AGENT_B = KnowledgeScope(hotline_id=B, all_hotlines=False, editor=False)


# --- unit: folding and CSV parsing -------------------------------------------------


def test_folding_drops_marks_and_turns_d_bar_into_d() -> None:
    assert fold("Căn cước công dân") == "can cuoc cong dan"
    assert fold("ĐĂNG KÝ") == "dang ky"
    assert fold("  Đăng ký khai sinh, (đúng hạn)!  ") == "dang ky khai sinh dung han"
    assert fold("Nghị định 23/2015/NĐ-CP") == "nghi dinh 23 2015 nd cp"
    # Composed and decomposed input fold alike (a phone keyboard may send either).
    assert fold("Thu\u0309 tu\u0323c") == fold("Thủ tục") == "thu tuc"
    assert search_words("cấp  căn cước căn") == ["cap", "can", "cuoc"]
    assert search_words(" ,.% _ ") == []  # nothing left that LIKE could misread


def test_csv_rows_become_drafts_with_the_default_owner() -> None:
    text = HEADER + 'Đăng ký khai sinh,"Cha, mẹ đăng ký trong 60 ngày",miễn,,\n'
    text += f"Chứng thực bản sao,Đối chiếu bản chính,,{B},không\n"
    drafts = parse_articles(text, default_hotline=A, hotlines={A, B})
    assert [(d.title, d.summary, d.hotline_id, d.published) for d in drafts] == [
        ("Đăng ký khai sinh", "Cha, mẹ đăng ký trong 60 ngày", A, True),
        ("Chứng thực bản sao", "Đối chiếu bản chính", B, False),
    ]


def test_csv_problems_name_line_and_column_and_keep_no_row() -> None:
    text = (
        HEADER
        + "Đăng ký khai sinh,Đúng hạn,,,\n"  # line 2: fine
        + '"Cấp thẻ\ncăn cước",,,,\n'  # lines 3-4: no summary (column 2)
        + "Đăng ký thường trú,Có chỗ ở hợp pháp,,xa-la,có lẽ\n"  # line 5: hotline, published
        + "dang ky khai sinh,Lặp lại,,,\n"  # line 6: the title of line 2, accents aside
    )
    with pytest.raises(CsvImportError) as caught:
        parse_articles(text, source="kb.csv", hotlines={A, B})
    found = [(p.line, p.column, p.field) for p in caught.value.problems]
    assert found == [(3, 2, "summary"), (5, 4, "hotline"), (5, 5, "published"), (6, 1, "title")]
    assert "line 3, column 2 (summary)" in str(caught.value)
    assert "line 6, column 1 (title): the same title as line 2" in str(caught.value)


def test_csv_header_and_encoding_problems_are_reported_at_their_line() -> None:
    with pytest.raises(CsvImportError) as caught:
        parse_articles("title,cost\nA,B\n")
    assert [(p.line, p.column, p.field) for p in caught.value.problems] == [
        (1, 2, "cost"),
        (1, 0, "summary"),
    ]
    with pytest.raises(CsvImportError) as caught:
        decode(HEADER.encode() + "Khai sinh,Đúng,,,\n".encode("cp1258"), "kb.csv")
    assert caught.value.problems[0].line == 2
    assert decode("\ufefftitle".encode(), "kb.csv") == "title"  # Excel's BOM is fine


def test_the_seed_file_parses_and_has_no_invented_certainty() -> None:
    drafts = parse_articles(decode(SEED.read_bytes(), str(SEED)))
    titles = [fold(d.title) for d in drafts]
    for wanted in ("can cuoc", "khai sinh", "thuong tru", "chung thuc ban sao", "xay dung"):
        assert any(wanted in t for t in titles), wanted
    assert all(d.summary and d.place and d.legal_basis for d in drafts)


# --- db: the service ---------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    return load_config(write_config(tmp_path))


@pytest.fixture
def sessions(config: HotlineConfig) -> Iterator[Any]:
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    yield make_session_factory(engine)
    engine.dispose()


def _article(
    knowledge: KnowledgeBase, title: str, summary: str, hotline: str | None = None, **more: Any
) -> Article:
    draft = ArticleDraft(title=title, summary=summary, hotline_id=hotline, **more)
    return knowledge.create(draft, actor="quantri", scope=EVERYTHING)


@pytest.mark.db
def test_the_migrated_table_matches_the_model(sessions: Any) -> None:
    engine = sessions.kw["bind"]
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    ours = [d for d in differences if "kb_articles" in repr(d)]
    assert ours == []


@pytest.mark.db
def test_search_ignores_accents_needs_every_word_and_puts_title_matches_first(
    sessions: Any,
) -> None:
    knowledge = KnowledgeBase(sessions)
    card = _article(knowledge, "Cấp thẻ căn cước công dân", "Công dân từ đủ 14 tuổi")
    birth = _article(knowledge, "Đăng ký khai sinh", "Mang căn cước của cha hoặc mẹ",
                     documents="Giấy chứng sinh")  # fmt: skip
    _article(knowledge, "Đăng ký thường trú", "Chỗ ở hợp pháp")
    assert [a.id for a in knowledge.search("can cuoc", AGENT_A)] == [card.id, birth.id]
    assert [a.id for a in knowledge.search("CAN CUOC", AGENT_A)] == [card.id, birth.id]
    assert [a.id for a in knowledge.search("căn cước", AGENT_A)] == [card.id, birth.id]
    # Every word must match, anywhere in the article (here one in the title, one in
    # the documents); "đ" is found by "d".
    assert [a.id for a in knowledge.search("dang ky chung sinh", AGENT_A)] == [birth.id]
    assert knowledge.search("can cuoc thuong tru", AGENT_A) == []
    assert [a.title for a in knowledge.search("khai sinh can", AGENT_A)] == ["Đăng ký khai sinh"]
    # The folded column follows an edit.
    knowledge.update(card.id, ArticleDraft(title="Cấp thẻ định danh", summary="Mới"),
                     actor="quantri", scope=EVERYTHING)  # fmt: skip
    assert [a.id for a in knowledge.search("can cuoc", AGENT_A)] == [birth.id]
    assert [a.id for a in knowledge.search("dinh danh", AGENT_A)] == [card.id]


@pytest.mark.db
def test_title_matches_rank_before_body_matches(sessions: Any) -> None:
    knowledge = KnowledgeBase(sessions)
    # "Ảnh" sorts before "Cấp": only the ranking can put the card article first.
    body = _article(knowledge, "Ảnh chân dung", "Ảnh dùng khi cấp căn cước")
    title = _article(knowledge, "Cấp căn cước", "Làm tại công an")
    assert [a.id for a in knowledge.search("can cuoc", AGENT_A)] == [title.id, body.id]


@pytest.mark.db
def test_owners_read_and_write_their_own_and_shared_articles_read_only(sessions: Any) -> None:
    knowledge = KnowledgeBase(sessions)
    shared = _article(knowledge, "Chứng thực bản sao", "Đối chiếu bản chính")
    of_a = _article(knowledge, "Đèn đường", "Báo tổ dân phố", hotline=A)
    of_b = _article(knowledge, "Hẹn giờ nộp hồ sơ", "Đặt lịch trực tuyến", hotline=B)
    hidden = _article(knowledge, "Bản nháp của A", "Chưa duyệt", hotline=A, published=False)
    assert {a.id for a in knowledge.search("", AGENT_A)} == {shared.id, of_a.id}
    assert {a.id for a in knowledge.search("", AGENT_B)} == {shared.id, of_b.id}
    assert {a.id for a in knowledge.search("", SUPERVISOR_A)} == {shared.id, of_a.id, hidden.id}
    draft = ArticleDraft(title="Sửa", summary="Sửa", hotline_id=B)
    with pytest.raises(NotEditable):
        knowledge.update(of_b.id, draft, actor="gs-a", scope=SUPERVISOR_A)
    with pytest.raises(NotEditable):  # shared: read only for a hotline's supervisor
        knowledge.set_published(shared.id, False, actor="gs-a", scope=SUPERVISOR_A)
    with pytest.raises(NotEditable):
        knowledge.update(of_a.id, ArticleDraft(title="x", summary="y", hotline_id=A),
                         actor="dtv-a", scope=AGENT_A)  # fmt: skip
    knowledge.set_published(of_a.id, False, actor="gs-a", scope=SUPERVISOR_A, address="10.0.0.9")
    assert of_a.id not in {a.id for a in knowledge.search("", AGENT_A)}
    with sessions() as session:
        rows = session.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.target, AuditEntry.address)
            .where(AuditEntry.actor == "gs-a")
        ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [("gs-a", "kb_unpublish", f"article {of_a.id}", "10.0.0.9")]


@pytest.mark.db
def test_import_is_all_or_nothing_and_updates_articles_with_the_same_title(sessions: Any) -> None:
    knowledge = KnowledgeBase(sessions)
    drafts = parse_articles(decode(SEED.read_bytes(), "seed"))
    assert knowledge.import_drafts(drafts, actor="cli", scope=EVERYTHING) == (len(drafts), 0)
    corrected = [ArticleDraft(title=drafts[0].title.upper(), summary="Đã sửa")]
    assert knowledge.import_drafts(corrected, actor="cli", scope=EVERYTHING) == (0, 1)
    with sessions() as session:
        assert session.scalar(select(func.count(Article.id))) == len(drafts)
    # A draft another owner's supervisor may not write stops the whole import.
    mixed = [ArticleDraft(title="Mới của A", summary="x", hotline_id=A),
             ArticleDraft(title="Của B", summary="y", hotline_id=B)]  # fmt: skip
    with pytest.raises(NotEditable):
        knowledge.import_drafts(mixed, actor="gs-a", scope=SUPERVISOR_A)
    with sessions() as session:
        assert session.scalar(select(func.count(Article.id))) == len(drafts)


@pytest.mark.db
def test_answering_from_an_article_closes_the_case_cites_it_and_texts_the_answer(
    config: HotlineConfig, sessions: Any, tmp_path: Path
) -> None:
    knowledge = KnowledgeBase(sessions)
    cases = CaseService(sessions, config)
    article = _article(knowledge, "Đăng ký khai sinh", "Đăng ký tại UBND phường trong 60 ngày.")
    other = _article(knowledge, "Hẹn giờ", "Đặt lịch", hotline=B)
    case = cases.open_case(channel="phone", hotline_id=A, caller_number="+84912000111",
                           summary="Hỏi thủ tục khai sinh", actor="dtv-a")  # fmt: skip
    with pytest.raises(KnowledgeError):  # another hotline's article cannot answer it
        knowledge.answer_case(cases, case.code, other.id, actor="dtv-a", scope=EVERYTHING)
    closed = knowledge.answer_case(cases, case.code, article.id, actor="dtv-a", scope=AGENT_A)
    assert closed.status == CLOSED
    assert closed.answer == "Đăng ký tại UBND phường trong 60 ngày."
    with sessions() as session:
        saved = session.scalar(select(Case).where(Case.code == case.code))
        assert saved is not None
        events = [(e.action, e.to_status, e.note) for e in saved.history]
    assert (KNOWLEDGE_ANSWER, None, f"article {article.id}: Đăng ký khai sinh") in events
    assert [e[1] for e in events if e[0] == "status"] == ["in_progress", "answered", "closed"]
    with sessions() as session:
        written = session.scalars(
            select(SmsMessage).where(SmsMessage.case_id == case.id,
                                     SmsMessage.purpose == "case_answered")
        ).all()  # fmt: skip
        assert [(m.to_number, m.status) for m in written] == [("+84912000111", "sent")]
    sent = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text().splitlines()]
    answered = [t for t in sent if t["purpose"] == "case_answered"]
    assert len(answered) == 1 and "trong 60 ngày" in answered[0]["text"]
    assert answered[0]["case_code"] == case.code
    # An excerpt the agent kept is the answer instead.
    second = cases.open_case(channel="phone", hotline_id=A, caller_number="+84912000111")
    closed = knowledge.answer_case(cases, second.code, article.id, actor="dtv-a",
                                   scope=AGENT_A, excerpt="Trong 60 ngày.")  # fmt: skip
    assert closed.answer == "Trong 60 ngày."


@pytest.mark.db
def test_the_import_command_loads_the_seed_or_reports_a_bad_row_and_imports_nothing(
    sessions: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ivr.cli import main

    config_file = tmp_path / "two-hotlines.yaml"
    bad = tmp_path / "kb.csv"
    bad.write_text(HEADER + "Khai sinh,Đúng hạn,,,\nThường trú,,,,\n", encoding="utf-8")
    assert main(["--config", str(config_file), "kb", "import", str(bad), "--hotline", A]) == 2
    assert f"{bad}:line 3, column 2 (summary): is empty" in capsys.readouterr().err
    with sessions() as session:
        assert session.scalar(select(func.count(Article.id))) == 0
    assert main(["--config", str(config_file), "kb", "import", str(SEED), "--hotline", A]) == 0
    assert "5 articles created, 0 updated" in capsys.readouterr().out
    found = KnowledgeBase(sessions).search("can cuoc", AGENT_A)
    assert found and found[0].hotline_id == A and "căn cước" in found[0].title
