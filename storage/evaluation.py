"""Queries of 群众评议: rounds, targets, codes, participation, and the anonymous counts.

A ballot writes three things in one transaction, each in a way that says nothing of the
rater's choice: the participation row (who rated whom), every count row of the target
(the chosen ones go up by one, the others are rewritten unchanged), and the target's
comment list (rewritten whole, the new comment at a random place).
"""

import functools
import json
import secrets
from collections.abc import Iterable, Sequence

from sqlalchemy import Integer, String, bindparam, case, func, insert, literal, union_all
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    EvaluationCode,
    EvaluationComments,
    EvaluationParticipation,
    EvaluationRound,
    EvaluationTally,
    EvaluationTarget,
)

# Rows per executemany: a round of 100,000 members writes millions of count rows.
_CHUNK = 5000


def _insert(session: AsyncSession):
    return postgresql_insert if session.bind.dialect.name == "postgresql" else sqlite_insert


async def rounds_of(session: AsyncSession, *, organisation_id: int) -> Sequence[EvaluationRound]:
    """Every round of the organisation, oldest first."""
    result = await session.exec(
        select(EvaluationRound)
        .where(EvaluationRound.organisation_id == organisation_id)
        .order_by(EvaluationRound.opens_at, EvaluationRound.id)
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
    """Every target of the round its count rows at zero (items × levels, by the target's kind)
    and an empty comment list, written by the database from the targets in two statements."""
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
    await session.exec(
        insert(EvaluationComments).from_select(
            ["round_id", "target", "texts"],
            select(target.round_id, target.target, literal("[]")).where(
                target.round_id == round_id
            ),
        )
    )


async def delete_round_rows(session: AsyncSession, *, round_id: int) -> None:
    """Forget a round's targets and their empty counts (before it opens, to set them anew)."""
    for table in (EvaluationTally, EvaluationComments, EvaluationTarget):
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


async def rated_by(session: AsyncSession, *, round_id: int, rater: str) -> set[str]:
    """The targets this rater has rated in the round."""
    result = await session.exec(
        select(EvaluationParticipation.target).where(
            EvaluationParticipation.round_id == round_id, EvaluationParticipation.rater == rater
        )
    )
    return set(result.all())


async def ratings_per_rater(session: AsyncSession, *, round_id: int) -> dict[str, int]:
    """rater → how many targets they have rated (for participation and reminders)."""
    result = await session.exec(
        select(EvaluationParticipation.rater, func.count())
        .where(EvaluationParticipation.round_id == round_id)
        .group_by(EvaluationParticipation.rater)
    )
    return dict(result.all())


async def record_participation(
    session: AsyncSession, *, round_id: int, rater: str, target: str
) -> bool:
    """Note that the rater has rated the target; False if they had already (nothing written).

    Two submissions at once meet on the primary key: the second waits for the first and
    then finds the row there."""
    result = await session.exec(
        _insert(session)(EvaluationParticipation)
        .values(round_id=round_id, rater=rater, target=target)
        .on_conflict_do_nothing(index_elements=["round_id", "rater", "target"])
        # Not rowcount: psycopg reports -1 for it here.
        .returning(EvaluationParticipation.round_id)
    )
    return result.first() is not None


@functools.cache
def _tally_update(items: int):
    """The UPDATE that counts a ballot of `items` items, built once per length: the level
    chosen on each item is a parameter (level_0, level_1, …)."""
    chosen_level = case(
        {item: bindparam(f"level_{item}", type_=Integer) for item in range(items)},
        value=EvaluationTally.item,
    )
    return (
        update(EvaluationTally)
        .where(
            EvaluationTally.round_id == bindparam("of_round", type_=Integer),
            EvaluationTally.target == bindparam("of_target", type_=String),
        )
        .values(
            count=EvaluationTally.count + case((EvaluationTally.level == chosen_level, 1), else_=0)
        )
        .execution_options(synchronize_session=False)
    )


async def add_to_tally(
    session: AsyncSession, *, round_id: int, target: str, choices: Sequence[int]
) -> None:
    """One ballot's choices (a level per item) added to the target's counts.

    Every count row of the target is rewritten, chosen or not, so no row's version or
    position records which levels this ballot chose."""
    await session.exec(
        _tally_update(len(choices)),
        params={
            "of_round": round_id,
            "of_target": target,
            **{f"level_{item}": level for item, level in enumerate(choices)},
        },
    )


async def add_comment(
    session: AsyncSession, *, round_id: int, target: str, comment: str | None
) -> None:
    """Put a comment into the target's list at a random place; with no comment, the list is
    rewritten as it is, so that a ballot with a comment looks like one without."""
    of_target = (EvaluationComments.round_id == round_id, EvaluationComments.target == target)
    if not comment:
        await session.exec(
            update(EvaluationComments)
            .where(*of_target)
            .values(texts=EvaluationComments.texts)
            .execution_options(synchronize_session=False)
        )
        return
    row = (await session.exec(select(EvaluationComments).where(*of_target).with_for_update())).one()
    texts = json.loads(row.texts)
    texts.insert(secrets.randbelow(len(texts) + 1), comment)
    await session.exec(
        update(EvaluationComments)
        .where(*of_target)
        .values(texts=json.dumps(texts, ensure_ascii=False))
        .execution_options(synchronize_session=False)
    )


async def tallies(session: AsyncSession, *, round_id: int) -> Sequence[EvaluationTally]:
    result = await session.exec(select(EvaluationTally).where(EvaluationTally.round_id == round_id))
    return result.all()


async def comments(session: AsyncSession, *, round_id: int) -> dict[str, list[str]]:
    result = await session.exec(
        select(EvaluationComments).where(EvaluationComments.round_id == round_id)
    )
    return {row.target: json.loads(row.texts) for row in result.all()}


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
