"""Queries of 群众评议: rounds, targets, codes, participation, and the anonymous counts.

Ballots reach the database only as batches (bot.core.pending_ballots): a batch writes
its raters' participation rows in shuffled order, the sum of its choices into every count
row of the target (chosen or not), and its comments as rows under random keys, in one
transaction.
"""

import functools
import random
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Integer, bindparam, case, func, insert, literal, union_all
from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import dialect_insert
from storage.models import (
    EvaluationCode,
    EvaluationCodeUse,
    EvaluationComment,
    EvaluationParticipation,
    EvaluationRound,
    EvaluationTally,
    EvaluationTarget,
)

# Rows per executemany: a round of 100,000 members writes millions of count rows.
_CHUNK = 5000


async def rounds_of(session: AsyncSession, *, organisation_id: int) -> Sequence[EvaluationRound]:
    """Every round of the organisation, oldest first."""
    result = await session.exec(
        select(EvaluationRound)
        .where(EvaluationRound.organisation_id == organisation_id)
        .order_by(EvaluationRound.opens_at, EvaluationRound.id)
    )
    return result.all()


async def rounds_to_count(session: AsyncSession, *, now: datetime) -> Sequence[EvaluationRound]:
    """Rounds that have ended (closed by hand, or their time is up) and are not counted."""
    result = await session.exec(
        select(EvaluationRound).where(
            col(EvaluationRound.counted_at).is_(None),
            col(EvaluationRound.closed_at).is_not(None) | (EvaluationRound.closes_at <= now),
        )
    )
    return result.all()


async def add_rows(session: AsyncSession, *, table, rows: Sequence[dict]) -> None:
    """Insert many rows of a rating table: one statement compiled once, executed for each
    chunk of rows (executemany; batched VALUES on PostgreSQL)."""
    statement = table.__table__.insert()
    for start in range(0, len(rows), _CHUNK):
        await session.exec(statement, params=rows[start : start + _CHUNK])


async def add_empty_counts(
    session: AsyncSession, *, round_id: int, items: dict[str, int], levels: int
) -> None:
    """Every target of the round its count rows at zero (items × levels, by the target's kind),
    written by the database from the targets in one statement."""
    numbers = union_all(
        *(select(literal(n, type_=Integer).label("n")) for n in range(max(*items.values(), levels)))
    ).cte("numbers")
    item, level = numbers.alias("item"), numbers.alias("level")
    target = EvaluationTarget
    await session.exec(
        insert(EvaluationTally).from_select(
            ["round_id", "target", "item", "level", "count"],
            select(target.round_id, target.target, item.c.n, level.c.n, literal(0, type_=Integer))
            .select_from(
                target.__table__.join(
                    item, item.c.n < case(items, value=target.kind, else_=0)
                ).join(level, level.c.n < levels)
            )
            .where(target.round_id == round_id),
        )
    )


async def delete_round_rows(session: AsyncSession, *, round_id: int) -> None:
    """Forget a round's targets and their empty counts (before it opens, to set them anew)."""
    for table in (EvaluationTally, EvaluationComment, EvaluationTarget):
        await session.exec(delete(table).where(table.round_id == round_id))


async def targets_of(
    session: AsyncSession, *, round_id: int, keys: Iterable[str] | None = None
) -> Sequence[EvaluationTarget]:
    statement = select(EvaluationTarget).where(EvaluationTarget.round_id == round_id)
    if keys is not None:
        statement = statement.where(col(EvaluationTarget.target).in_(list(keys)))
    return (await session.exec(statement.order_by(EvaluationTarget.target))).all()


async def target_kinds(
    session: AsyncSession, *, round_id: int
) -> Sequence[tuple[str, str, int, bool]]:
    """(target, kind, branch id, leadership) of every target: the columns, not the rows as
    objects, for working out who rates how many (a round may have 100,000 targets)."""
    result = await session.exec(
        select(
            EvaluationTarget.target,
            EvaluationTarget.kind,
            EvaluationTarget.branch_id,
            EvaluationTarget.leadership,
        ).where(EvaluationTarget.round_id == round_id)
    )
    return result.all()


def _held(session: AsyncSession):
    """The ballots this process holds for their batch (bot.core.pending_ballots), which
    the session's database carries: rated, though not in the tables yet."""
    return session.info.get("held_ratings")


async def rated_by(session: AsyncSession, *, round_id: int, rater: str) -> set[str]:
    """The targets this rater has rated in the round (counted, or held for their batch)."""
    result = await session.exec(
        select(EvaluationParticipation.target).where(
            EvaluationParticipation.round_id == round_id, EvaluationParticipation.rater == rater
        )
    )
    held = _held(session)
    return set(result.all()) | (held.held_targets(round_id, rater) if held else set())


async def ratings_per_rater(session: AsyncSession, *, round_id: int) -> dict[str, int]:
    """rater → how many targets they have rated, counted or held (for participation and
    reminders)."""
    result = await session.exec(
        select(EvaluationParticipation.rater, func.count())
        .where(EvaluationParticipation.round_id == round_id)
        .group_by(EvaluationParticipation.rater)
    )
    found = dict(result.all())
    held = _held(session)
    for rater, count in (held.held_counts(round_id) if held else {}).items():
        found[rater] = found.get(rater, 0) + count
    return found


async def record_participation(
    session: AsyncSession, *, round_id: int, pairs: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Note that each rater has rated their target, in shuffled order; the (rater, target)
    pairs that were new (one already there was counted before and must not count again)."""
    rows = [{"round_id": round_id, "rater": rater, "target": target} for rater, target in pairs]
    random.SystemRandom().shuffle(rows)
    new = set()
    # A few thousand rows a statement: SQLite allows 32,766 parameters in one.
    for start in range(0, len(rows), _CHUNK // 2):
        result = await session.exec(
            dialect_insert(session)(EvaluationParticipation)
            .values(rows[start : start + _CHUNK // 2])
            .on_conflict_do_nothing(index_elements=["round_id", "rater", "target"])
            # Not rowcount: psycopg reports -1 for it here.
            .returning(EvaluationParticipation.rater, EvaluationParticipation.target)
        )
        new |= set(result.all())
    return new


async def recorded(
    session: AsyncSession, *, round_id: int, pairs: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which of these (rater, target) pairs the round's participation holds."""
    pairs = set(pairs)
    raters = {rater for rater, _target in pairs}
    if not raters:
        return set()
    result = await session.exec(
        select(EvaluationParticipation.rater, EvaluationParticipation.target).where(
            EvaluationParticipation.round_id == round_id,
            col(EvaluationParticipation.rater).in_(raters),
        )
    )
    return set(result.all()) & pairs


@functools.cache
def _add_to_counts(cells: int, levels: int):
    """The UPDATE that adds a batch's sums to every count row of a target, built once per
    shape: the sum for each (item, level) cell is a parameter (added_0, added_1, …)."""
    cell = EvaluationTally.item * levels + EvaluationTally.level
    return (
        update(EvaluationTally.__table__)
        .where(
            EvaluationTally.round_id == bindparam("of_round", type_=Integer),
            EvaluationTally.target == bindparam("of_target"),
        )
        .values(
            count=EvaluationTally.count
            + case(
                {n: bindparam(f"added_{n}", type_=Integer) for n in range(cells)},
                value=cell,
                else_=0,
            )
        )
    )


async def add_to_tallies(
    session: AsyncSession, *, round_id: int, sums: dict[str, Sequence[Sequence[int]]]
) -> None:
    """Batches' choices, summed per target, item and level, added to the targets' counts:
    one statement per shape of item list, executed for every target.

    Every count row of a target is rewritten, chosen or not, so no row's version says which
    levels the batch chose."""
    by_shape: dict[tuple[int, int], list[dict]] = {}
    for target, per_item in sums.items():
        added = [n for per_level in per_item for n in per_level]
        by_shape.setdefault((len(added), len(per_item[0])), []).append(
            {
                "of_round": round_id,
                "of_target": target,
                **{f"added_{n}": value for n, value in enumerate(added)},
            }
        )
    for (cells, levels), params in by_shape.items():
        await session.exec(_add_to_counts(cells, levels), params=params)


async def add_comments(
    session: AsyncSession, *, round_id: int, texts: Sequence[tuple[str, str]]
) -> None:
    """Batches' comments, (target, text), each under a random key (so in no order but a
    random one)."""
    await add_rows(
        session,
        table=EvaluationComment,
        rows=[
            {"round_id": round_id, "target": target, "slot": secrets.token_hex(16), "text": t}
            for target, t in texts
        ],
    )


async def tallies(session: AsyncSession, *, round_id: int) -> Sequence[EvaluationTally]:
    result = await session.exec(select(EvaluationTally).where(EvaluationTally.round_id == round_id))
    return result.all()


async def comments(session: AsyncSession, *, round_id: int) -> dict[str, list[str]]:
    result = await session.exec(
        select(EvaluationComment.target, EvaluationComment.text).where(
            EvaluationComment.round_id == round_id
        )
    )
    found: dict[str, list[str]] = {}
    for target, text in result.all():
        found.setdefault(target, []).append(text)
    return found


async def code_raters_per_target(session: AsyncSession, *, round_id: int) -> dict[str, int]:
    """target → how many evaluation codes rated it (said beside its figures)."""
    result = await session.exec(
        select(EvaluationParticipation.target, func.count())
        .where(
            EvaluationParticipation.round_id == round_id,
            col(EvaluationParticipation.rater).startswith("code:"),
        )
        .group_by(EvaluationParticipation.target)
    )
    return dict(result.all())


async def code_use_known(session: AsyncSession, *, digest: str) -> bool:
    return await session.get(EvaluationCodeUse, digest) is not None


async def record_code_use(session: AsyncSession, *, digests: Sequence[str]) -> None:
    await session.exec(
        dialect_insert(session)(EvaluationCodeUse)
        .values([{"digest": d} for d in digests])
        .on_conflict_do_nothing(index_elements=["digest"])
    )


async def code_by_digest(session: AsyncSession, *, digest: str) -> EvaluationCode | None:
    result = await session.exec(select(EvaluationCode).where(EvaluationCode.digest == digest))
    return result.first()


async def code_counts(session: AsyncSession, *, round_id: int) -> list[tuple[str, int | None, int]]:
    """(rater group, branch id, codes issued) for the round."""
    result = await session.exec(
        select(EvaluationCode.rater_group, EvaluationCode.branch_id, func.count())
        .where(EvaluationCode.round_id == round_id)
        .group_by(EvaluationCode.rater_group, EvaluationCode.branch_id)
    )
    return list(result.all())
