"""The knowledge base's table (migration ``0011_knowledge_base``)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ivr.db.models import Base, UtcDateTime, utc_now

logger = logging.getLogger(__name__)

# The article's texts as citizens ask about them, in the order a page shows them.
TEXT_FIELDS = ("summary", "documents", "fees", "place", "processing_time", "legal_basis")


class Article(Base):
    """One administrative procedure as the hotline explains it.

    ``hotline_id`` is the owner (a supervisor of that hotline edits it); None
    means shared by every hotline of the deployment (edited by unrestricted
    supervisors and administrators). ``folded_title`` and ``folded_text`` are
    :func:`ivr.knowledge.folding.fold` of the title and of every text, written
    by the service on each change and searched with ``LIKE``."""

    __tablename__ = "kb_articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hotline_id: Mapped[str | None] = mapped_column(String(64), index=True)
    topic: Mapped[str | None] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(255))
    summary: Mapped[str] = mapped_column(Text, default="")  # what it is; the answer read out
    documents: Mapped[str] = mapped_column(Text, default="")  # documents to bring
    fees: Mapped[str] = mapped_column(Text, default="")
    place: Mapped[str] = mapped_column(Text, default="")  # where to file it
    processing_time: Mapped[str] = mapped_column(Text, default="")  # how long it takes
    legal_basis: Mapped[str] = mapped_column(Text, default="")  # legal basis and notes
    published: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    folded_title: Mapped[str] = mapped_column(String(255), default="")
    folded_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
