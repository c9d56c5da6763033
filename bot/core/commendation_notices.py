"""评选表彰's messages through the outbox: to a nominee, that they were put forward (with
their material, so they can read it); to everyone, the published list."""

from collections.abc import Sequence
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import commendation
from bot.core.commendation import NOMINATED, PUBLISHED, Rules
from bot.core.notices import Composed, Notice, undeliverable
from storage import people
from storage.models import Nomination, OutboxMessage, Selection

NOTICES = frozenset({NOMINATED, PUBLISHED})


async def compose(
    session: AsyncSession, *, messages: Sequence[OutboxMessage], now: datetime
) -> Composed:
    composed = Composed()
    if not messages:
        return composed
    members = await people.members_by_id(session, ids=(m.member_id for m in messages))
    winners: dict[int, list] = {}
    for message in messages:
        member = members.get(message.member_id)
        if reason := undeliverable(member):
            composed.skipped[message.id] = reason
            continue
        kind, _, number = message.subject.partition(":")
        if message.reminder == NOMINATED:
            nomination = await session.get(Nomination, int(number))
            if nomination is None:  # withdrawn before the message went out
                composed.skipped[message.id] = "withdrawn"
                continue
            selection = await session.get(Selection, nomination.selection_id)
            values = {
                "selection": selection,
                "chosen_category": Rules.of(selection).category(nomination.category),
                "material": nomination.material,
            }
            composed.notices.append(
                Notice(message.id, member, "commendation_nominated_notice", values)
            )
            continue
        selection = await session.get(Selection, int(number))
        if selection.id not in winners:
            winners[selection.id] = await commendation.winners(session, selection=selection)
        values = {
            "selection": selection,
            "rules": Rules.of(selection),
            "winners": winners[selection.id],
        }
        composed.notices.append(Notice(message.id, member, "commendation_announcement", values))
    return composed
