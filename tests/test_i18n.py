"""The console's gettext catalogue: the committed .mo is the .po compiled, the
documented ``pybabel extract`` finds exactly the catalogue's texts, every text is
translated with its placeholders intact, and the package ships the files."""

from __future__ import annotations

import ast
import io
import re
import tomllib
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from ivr.cases.service import SEVERITIES
from ivr.contracts.statuses import CaseStatus
from ivr.web.i18n import LANGUAGES, LOCALE_DIR, VI, translator
from ivr.web.models import ROLES

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = LOCALE_DIR / "messages.pot"
PO = LOCALE_DIR / "vi" / "LC_MESSAGES" / "messages.po"
MO = LOCALE_DIR / "vi" / "LC_MESSAGES" / "messages.mo"
PLACEHOLDER = re.compile(r"\{(\w*)\}")


def _read(path: Path) -> Catalog:
    with path.open("rb") as f:
        return read_po(f)


def _ids(catalog: Catalog) -> set[str]:
    return {m.id for m in catalog if m.id and isinstance(m.id, str)}


def test_committed_mo_is_a_fresh_compile_of_the_po() -> None:
    out = io.BytesIO()
    write_mo(out, _read(PO))  # what `pybabel compile` does
    assert MO.read_bytes() == out.getvalue(), (
        "messages.mo is stale: run `pybabel compile -d ivr/web/locale` (docs/web.md)"
    )


def test_pybabel_extract_finds_exactly_the_catalogue_texts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command of docs/web.md, run in-process so no external program is needed.
    monkeypatch.chdir(ROOT)
    pot = tmp_path / "messages.pot"
    CommandLineInterface().run(
        ["pybabel", "-q", "extract", "-F", "babel.cfg", "--add-location=file",
         "-c", "TRANSLATORS:", "-o", str(pot), "."]
    )  # fmt: skip
    extracted = _ids(_read(pot))
    assert "Sign in" in extracted  # from a template
    assert "Access denied" in extracted  # from i18n.BY_VALUE (N_)
    assert "Too many failed sign-ins. Try again in {seconds} s." in extracted  # from Python
    po = _read(PO)
    assert extracted - _ids(po) == set(), "texts missing from messages.po: run pybabel update"
    # A text in the .po that extraction no longer finds would be dropped by the next
    # `pybabel update`: mark texts translated by value with N_ in ivr/web/i18n.py.
    assert _ids(po) - extracted == set(), "texts pybabel update would drop"
    assert _ids(_read(TEMPLATE)) == extracted, "messages.pot is stale: run pybabel extract"


def test_every_text_is_translated_with_the_same_placeholders() -> None:
    po = _read(PO)
    assert po.locale is not None and str(po.locale) == "vi"
    assert not po.obsolete, "obsolete (#~) entries left in messages.po"
    for message in po:
        if not message.id:
            continue
        assert isinstance(message.id, str) and isinstance(message.string, str)
        assert message.string.strip(), f"no Vietnamese for {message.id!r}"
        assert not message.fuzzy, f"fuzzy (unchecked) translation for {message.id!r}"
        # str.format fills these after translation: a lost or renamed one is an error page.
        assert set(PLACEHOLDER.findall(message.string)) == set(PLACEHOLDER.findall(message.id)), (
            message.id
        )
    assert len(VI) == len(_ids(po))


def test_texts_translated_by_value_are_all_in_the_catalogue() -> None:
    agent_states = ("idle", "ringing", "talking", "paused", "wrapup", "unavailable")
    values = [*CaseStatus, *SEVERITIES, *ROLES, *agent_states]
    missing = [value for value in values if value not in VI]
    assert not missing, f"no Vietnamese for {missing}"


def test_translator_fills_placeholders_after_translation() -> None:
    vi, en = translator("vi"), translator("en")
    assert LANGUAGES == ("vi", "en")
    assert vi("Sign in") == "Đăng nhập" and en("Sign in") == "Sign in"
    assert vi("On since {at}, by {by}", at="08:00", by="giamsat") == (
        "Đang áp dụng từ 08:00, do giamsat đặt"
    )
    assert en("Too many failed sign-ins. Try again in {seconds} s.", seconds=30) == (
        "Too many failed sign-ins. Try again in 30 s."
    )
    assert vi("A text nobody translated") == "A text nobody translated"
    assert vi(CaseStatus.IN_PROGRESS) == "đang xử lý"
    # gettext("") answers the catalogue's header; an empty message stays empty.
    assert vi("") == "" and en("") == ""


def test_the_catalogue_mapping_is_read_only() -> None:
    assert VI["Sign in"] == "Đăng nhập"
    with pytest.raises(TypeError):
        VI["Sign in"] = "Sign in"  # type: ignore[index]


def test_package_data_ships_the_catalogue() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["ivr"]
    # setuptools globs each pattern inside the package directory.
    shipped = {path for pattern in patterns for path in (ROOT / "ivr").glob(pattern)}
    assert {PO, MO} <= shipped
    dependencies = " ".join(config["project"]["dependencies"])
    assert "Babel" in dependencies and "XlsxWriter" in dependencies


def _error_page_texts() -> set[str]:
    """The literal titles and messages handlers pass to ``error_page``."""
    texts: set[object] = set()
    for path in (ROOT / "ivr" / "web").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name != "error_page":
                continue
            values = [*node.args[2:], *(k.value for k in node.keywords)]
            texts |= {v.value for v in values if isinstance(v, ast.Constant) and v.value}
    return {text for text in texts if isinstance(text, str)}


def test_every_error_page_text_has_its_vietnamese_form() -> None:
    texts = _error_page_texts()
    assert {"Access denied", "Your role does not allow this page."} <= texts
    missing = sorted(text for text in texts if text not in VI)
    assert not missing, f"no Vietnamese for {missing}: add N_() in ivr/web/i18n.py"
