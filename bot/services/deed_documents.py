"""Deed material (先进事迹材料) as documents: the text of an uploaded .docx or .txt, and the
published list compiled into one .docx for printing (汇编成册), ordered by prize."""

import io
from dataclasses import dataclass

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Pt

from bot.services.text import normalise

UPLOAD_LIMIT = 2 * 1024 * 1024  # bytes: a 1,500-字 document is far smaller
FONT = "宋体"


class UnreadableDocument(Exception):
    """Not a .docx or .txt this module can read."""


def text_of(filename: str, content: bytes) -> str:
    """The text of an uploaded .docx (its paragraphs) or .txt (UTF-8, else GB18030),
    normalised as typed text is."""
    return normalise(_raw_text_of(filename, content))


def _raw_text_of(filename: str, content: bytes) -> str:
    name = filename.lower()
    if name.endswith(".docx"):
        try:
            document = Document(io.BytesIO(content))
        except Exception as error:  # noqa: BLE001 - a damaged or renamed file
            raise UnreadableDocument(filename) from error
        return "\n".join(p.text for p in document.paragraphs if p.text.strip())
    if name.endswith(".txt"):
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                return content.decode(encoding)
            except UnicodeDecodeError:
                continue
    raise UnreadableDocument(filename)


@dataclass(frozen=True)
class Entry:
    """One commended nominee in the compilation."""

    category: str
    prize: str  # the prize's words, e.g. 一等奖
    name: str
    branch: str
    material: str


def compile_docx(title: str, entries: list[Entry], branch_label: str) -> bytes:
    """One document: the title, then per category and prize each nominee's material."""
    document = Document()
    style = document.styles["Normal"]
    style.font.name = FONT
    style.font.size = Pt(12)
    # Word picks the East Asian font from its own attribute.
    style.element.rPr.rFonts.set(qn("w:eastAsia"), FONT)
    heading = document.add_heading(title, level=0)
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    section = None
    for entry in entries:
        if (entry.category, entry.prize) != section:
            section = (entry.category, entry.prize)
            document.add_heading(f"{entry.category} · {entry.prize}", level=1)
        document.add_heading(entry.name, level=2)
        if entry.branch:
            document.add_paragraph(f"{branch_label}{entry.branch}")
        for paragraph in entry.material.splitlines():
            if paragraph.strip():
                document.add_paragraph(paragraph.strip())
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
