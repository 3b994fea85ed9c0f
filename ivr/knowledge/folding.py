"""Vietnamese text folded for search: what an agent types without accents
("can cuoc") must find what is written with them ("Căn cước").

Folding is done in Python, once per write, into a stored column (see
:mod:`ivr.knowledge.models`), because neither SQLite nor PostgreSQL folds
Vietnamese the same way out of the box (``unaccent`` is an extension; SQLite's
``LIKE`` folds ASCII case only). Searching is then a plain ``LIKE`` on that
column, identical on both databases.
"""

from __future__ import annotations

import logging
import re
import unicodedata

logger = logging.getLogger(__name__)

# "đ" is a letter of its own, not "d" with a combining mark: NFD leaves it whole.
_LETTERS_WITHOUT_DECOMPOSITION = str.maketrans({"đ": "d", "Đ": "d"})
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Lowercase ASCII words separated by single spaces: tone and vowel marks
    removed (NFD, combining marks dropped), ``đ`` → ``d``, punctuation → space.

    >>> fold("Căn cước công dân")
    'can cuoc cong dan'
    """
    decomposed = unicodedata.normalize("NFD", text.translate(_LETTERS_WITHOUT_DECOMPOSITION))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NOT_WORD.sub(" ", bare.lower()).strip()


def search_words(query: str) -> list[str]:
    """The distinct folded words of a query, in order (an empty query has none)."""
    return list(dict.fromkeys(fold(query).split()))
