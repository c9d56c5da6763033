"""Deed material (先进事迹材料) as documents: the text of an uploaded .docx or .txt, and the
published list compiled into one .docx for printing (汇编成册), ordered by prize.

An upload is hostile until read: a .docx is a zip whose parts may unpack to gigabytes, so its
declared sizes are checked before anything is parsed, and parsing runs off the event loop
under a time limit. Text keeps only the characters XML allows, so that no material can stop
the compiled document from being written.
"""

import asyncio
import io
import re
import zipfile
from dataclasses import astuple, dataclass

from bot.core.text import normalise

UPLOAD_LIMIT = 2 * 1024 * 1024  # bytes: a 1,500-字 document is far smaller
# Unpacked, a .docx of 1,500 字 with a few photos stays well under these; a zip bomb does not.
UNPACKED_LIMIT = 8 * 1024 * 1024  # bytes, all parts together
PARTS_LIMIT = 200
READ_SECONDS = 10
FONT = "宋体"

# What XML 1.0 refuses (python-docx raises on it): control characters but tab and line breaks,
# lone surrogates, U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class UnreadableDocument(Exception):
    """Not a .docx or .txt this module can read."""


class DocumentTooLarge(UnreadableDocument):
    """A .docx that unpacks to far more than deed material needs, or takes too long to read."""


def xml_safe(text: str) -> str:
    """The text without the characters an XML document cannot hold."""
    return _NOT_XML.sub("", text)


async def read_upload(filename: str, content: bytes) -> str:
    """The text of an uploaded file, read off the event loop within `READ_SECONDS`."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(text_of, filename, content), READ_SECONDS)
    except TimeoutError as error:
        # The thread cannot be stopped, but the size checks bound what it still has to do.
        raise DocumentTooLarge(filename) from error


def text_of(filename: str, content: bytes) -> str:
    """The text of an uploaded .docx (its paragraphs) or .txt (UTF-8, else GB18030),
    normalised as typed text is."""
    return normalise(_raw_text_of(filename, content))


def _raw_text_of(filename: str, content: bytes) -> str:
    name = filename.lower()
    if len(content) > UPLOAD_LIMIT:  # whatever size the update announced
        raise UnreadableDocument(filename)
    if name.endswith(".docx"):
        _check_unpacked_size(filename, content)
        from docx import Document  # loaded with the first document, not with the bot

        try:
            document = Document(io.BytesIO(content))
        except Exception as error:  # noqa: BLE001 - a damaged or renamed file
            raise UnreadableDocument(filename) from error
        return xml_safe("\n".join(p.text for p in document.paragraphs if p.text.strip()))
    if name.endswith(".txt"):
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                return xml_safe(content.decode(encoding))
            except UnicodeDecodeError:
                continue
    raise UnreadableDocument(filename)


def _check_unpacked_size(filename: str, content: bytes) -> None:
    """Refuse a zip whose parts claim too much; zipfile never unpacks more than a part claims."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as error:
        raise UnreadableDocument(filename) from error
    if len(parts) > PARTS_LIMIT or sum(part.file_size for part in parts) > UNPACKED_LIMIT:
        raise DocumentTooLarge(filename)


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
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml.ns import qn
    from docx.shared import Pt

    title, branch_label = xml_safe(title), xml_safe(branch_label)
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
        # Material stored before it was cleaned on input must not block the compilation.
        entry = Entry(*(xml_safe(value) for value in astuple(entry)))
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
