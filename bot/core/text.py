"""Text as people send it, made safe before anything reads or stores it.

Every message, caption and command argument passes through `normalise` at the door (the
gate's Turn), and so does the text of an uploaded document: a NUL byte would be refused by
PostgreSQL and lose what was written, and a text of invisible characters would be saved as
something nobody can see.
"""

import re
import unicodedata

# Control characters (newline and tab are text), lone surrogates (not encodable as UTF-8) and
# the two non-characters XML 1.0 does not allow (the workbook and the .docx are XML).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Characters that show nothing: spaces, zero-width and joining marks, direction marks, fillers,
# variation selectors and tags. Inside a text they may matter (an emoji's joiner); at its ends,
# or as the whole of it, they only hide that nothing was written.
_INVISIBLE = (
    r"\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202f"
    r"\u205f-\u206f\u2800\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e0fff"
)
_EDGES = re.compile(f"^[{_INVISIBLE}]+|[{_INVISIBLE}]+$")


def normalise(text: str) -> str:
    """The text with unsafe characters removed, line ends as newlines, composed (NFC) and
    without invisible characters at either end; "" when nothing visible is left."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", _UNSAFE.sub("", text))
    return _EDGES.sub("", text)
