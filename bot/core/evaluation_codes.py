"""Evaluation codes (测评码): one-time links for the masses who rate without an account.

A code is issued for a rater group (and the branch it is attached to), never for a person:
it is a random token, and only its digest is stored. Its holder rates the group's targets,
each once; when all are rated the code is spent. QR codes and a printable PDF sheet carry
the links.
"""

import hashlib
import hmac
import io
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import evaluation
from bot.core.access import Account
from bot.core.evaluation import MAX_CODES, Rater, RoundState
from bot.core.tokens import digest
from storage import evaluation as queries
from storage.models import EvaluationCode, EvaluationRound, RaterGroup

CODE_PREFIX = "rate-"


def looks_like_code(payload: str) -> bool:
    return payload.startswith(CODE_PREFIX)


def account_key(account: Account) -> str:
    """What the keyed hashes of code use say of an account: its channel and its id there."""
    return f"{account.channel}:{account.external_id}"


async def issue_codes(
    session: AsyncSession,
    *,
    evaluation_round: EvaluationRound,
    rater_group: RaterGroup,
    branch_id: int | None,
    count: int,
) -> list[str]:
    """`count` new codes for the group; the tokens are returned once and never stored."""
    tokens = [CODE_PREFIX + secrets.token_urlsafe(12) for _ in range(max(0, min(count, MAX_CODES)))]
    await queries.add_rows(
        session,
        table=EvaluationCode,
        rows=[
            {
                "round_id": evaluation_round.id,
                "digest": digest(token),
                "rater_group": RaterGroup(rater_group).value,
                "branch_id": branch_id,
            }
            for token in tokens
        ],
    )
    return tokens


class Redemption(StrEnum):
    OK = "ok"
    INVALID = "invalid"
    NOT_OPEN = "not_open"  # the round has not opened yet, or has closed
    SPENT = "spent"  # every target of the code has been rated
    ONE_PER_PERSON = "one_per_person"  # this account has used another code in the round


@dataclass(frozen=True)
class Redeemed:
    outcome: Redemption
    rater: Rater | None = None
    evaluation_round: EvaluationRound | None = None


async def redeem(
    session: AsyncSession,
    *,
    token: str,
    account: Account,
    key: bytes,
    now: datetime,
) -> Redeemed:
    """Whose ballot a code opens for this account: an anonymous rater of its group, if the
    code is still good and the account has used no other code in the round."""
    code = await queries.code_by_digest(session, digest=digest(token))
    if code is None:
        return Redeemed(Redemption.INVALID)
    evaluation_round = await session.get(EvaluationRound, code.round_id)
    if evaluation.state_of(evaluation_round, now) != RoundState.OPEN:
        return Redeemed(Redemption.NOT_OPEN, evaluation_round=evaluation_round)
    rater = Rater.of_code(code, evaluation_round.organisation_id)
    targets = await evaluation.targets_for(session, evaluation_round=evaluation_round, rater=rater)
    if all(t.rated for t in targets):
        return Redeemed(Redemption.SPENT, evaluation_round=evaluation_round)
    claimed = await _claim(
        session, key=key, round_id=code.round_id, account=account_key(account), code=code.id
    )
    if not claimed:
        return Redeemed(Redemption.ONE_PER_PERSON, evaluation_round=evaluation_round)
    return Redeemed(Redemption.OK, rater, evaluation_round)


def _keyed(key: bytes, *parts: object) -> str:
    return hmac.new(key, ":".join(map(str, parts)).encode(), hashlib.sha256).hexdigest()


async def _claim(session: AsyncSession, *, key: bytes, round_id: int, account: str, code: int):
    """One code per account and round, kept across restarts: two keyed hashes, one saying the
    account has used a code in the round, one letting it come back to that same code. Neither
    says which account or which code to whoever lacks the key (the bot's configuration)."""
    used = _keyed(key, "account used a code", round_id, account)
    this_one = _keyed(key, "account and its code", round_id, account, code)
    if await queries.code_use_known(session, digest=used):
        return await queries.code_use_known(session, digest=this_one)
    await queries.record_code_use(session, digests=[used, this_one])
    return True


def qr_png(url: str, caption: tuple[str, ...] = (), font_path: str | None = None) -> bytes:
    """A QR code as PNG, with `caption` lines printed under it (a member's name and branch,
    so that a printed sheet can be cut up and handed out); `font_path` has CJK glyphs."""
    import qrcode
    from PIL import Image, ImageDraw, ImageFont

    image = qrcode.make(url, border=2).get_image().convert("RGB")
    if caption:
        size = max(image.width // 14, 12)
        font = ImageFont.truetype(font_path, size) if font_path else ImageFont.load_default()
        line_height = int(size * 1.4)
        framed = Image.new("RGB", (image.width, image.height + line_height * len(caption)), "white")
        framed.paste(image, (0, 0))
        draw = ImageDraw.Draw(framed)
        for number, line in enumerate(caption):
            top = image.height + number * line_height
            draw.text((image.width / 2, top), line, fill="black", font=font, anchor="ma")
        image = framed
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def pdf_sheet(title: str, caption: str, urls: list[str]) -> bytes:
    """An A4 sheet of QR codes, each with its link, to cut up and hand out (6 per page)."""
    import qrcode
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    # A CID font every PDF reader in China has: Chinese text needs no font file of ours.
    font = "STSong-Light"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4)
    page.setTitle(title)
    width, height = A4
    columns, rows, size = 2, 3, 60 * mm
    cell_w, cell_h = width / columns, (height - 30 * mm) / rows
    for index, url in enumerate(urls):
        slot = index % (columns * rows)
        if slot == 0:
            if index:
                page.showPage()
            page.setFont(font, 14)
            page.drawCentredString(width / 2, height - 15 * mm, title)
        column, row = slot % columns, slot // columns
        x = column * cell_w + (cell_w - size) / 2
        y = height - 25 * mm - (row + 1) * cell_h + 18 * mm
        image = qrcode.make(url, border=1).get_image()
        page.drawImage(ImageReader(image), x, y, size, size)
        page.setFont(font, 10)
        page.drawCentredString(column * cell_w + cell_w / 2, y - 6 * mm, caption)
        page.setFont("Helvetica", 6)
        page.drawCentredString(column * cell_w + cell_w / 2, y - 11 * mm, url)
    page.showPage()
    page.save()
    return buffer.getvalue()
