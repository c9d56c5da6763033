"""Queries of 群众评议: rounds, targets, codes, participation, and the anonymous counts.

Ballots reach the database only as batches (bot.core.pending_ballots): a batch writes
its raters' participation rows in shuffled order, the sum of its choices into every count
row of the target (chosen or not), and its comments as rows under random keys, in one
transaction. A target's count rows appear with its first batch: an absent row counts zero
(a round of 1,000,000 members would otherwise open with 30,000,000 rows of zeros).
"""

import random
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import String, case, cast, func, insert, literal, or_, true
from sqlmodel import col, delete, select
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
    Member,
    TargetKind,
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


async def add_targets(
    session: AsyncSession,
    *,
    round_id: int,
    organisation_id: int,
    leadership_roles: Sequence[str],
    cadre_category: str,
) -> None:
    """Every active member and every branch with one a target of the round, written by the
    database from the member rows in two statements: a member holding one of
    `leadership_roles` is of the leadership, and rated as a leading cadre like one of
    `cadre_category`."""
    active = (Member.organisation_id == organisation_id, Member.active)
    columns = ["round_id", "target", "kind", "branch_id", "leadership"]
    await session.exec(
        insert(EvaluationTarget).from_select(
            columns,
            select(
                literal(round_id),
                literal("branch:") + cast(Member.branch_id, String),
                literal(TargetKind.BRANCH.value),
                Member.branch_id,
                literal(False),
            )
            .where(*active)
            .distinct(),
        )
    )
    # roles is a space-separated list ("member secretary"): a role is a word of it.
    words = literal(" ") + Member.roles + literal(" ")
    leadership = or_(*(words.like(f"% {role} %") for role in leadership_roles))
    await session.exec(
        insert(EvaluationTarget).from_select(
            columns,
            select(
                literal(round_id),
                literal("member:") + cast(Member.id, String),
                case(
                    (
                        leadership | (Member.category == cadre_category),
                        TargetKind.LEADING_CADRE.value,
                    ),
                    else_=TargetKind.ORDINARY.value,
                ),
                Member.branch_id,
                case((leadership, true()), else_=False),
            ).where(*active),
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


async def add_to_tallies(
    session: AsyncSession, *, round_id: int, sums: dict[str, Sequence[Sequence[int]]]
) -> None:
    """Batches' choices, summed per target, item and level, added to the targets' counts
    (a row the target did not have yet starts at the sum): one statement, executed for
    every cell of every target.

    Every count cell of a target is written, chosen or not, so no row's version (nor its
    being there) says which levels the batch chose."""
    rows = [
        {"round_id": round_id, "target": target, "item": item, "level": level, "count": n}
        for target, per_item in sums.items()
        for item, per_level in enumerate(per_item)
        for level, n in enumerate(per_level)
    ]
    statement = dialect_insert(session)(EvaluationTally)
    statement = statement.on_conflict_do_update(
        index_elements=["round_id", "target", "item", "level"],
        set_={"count": EvaluationTally.count + statement.excluded.count},
    )
    for start in range(0, len(rows), _CHUNK):
        await session.exec(statement, params=rows[start : start + _CHUNK])


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


def _in_scope(table, round_id: int, branch_id: int | None, target: str | None):
    """The rows of `table` (keyed by round and target) of the round's targets in a branch,
    or of one target, or all."""
    if target is not None:
        return [table.target == target]
    if branch_id is not None:
        return [
            table.target.in_(
                select(EvaluationTarget.target).where(
                    EvaluationTarget.round_id == round_id, EvaluationTarget.branch_id == branch_id
                )
            )
        ]
    return []


async def target_figures(
    session: AsyncSession,
    *,
    round_id: int,
    satisfied_levels: int,
    branch_id: int | None = None,
    target: str | None = None,
) -> Sequence[tuple[str, str, int, int, int, int]]:
    """(target, kind, branch id, raters, ballots' choices in the satisfied levels, all
    choices) of the round's targets (of a branch, or one), summed by the database: a target
    rated by nobody has no count rows, and zeros."""
    counts = (
        select(
            EvaluationTally.target,
            func.sum(case((EvaluationTally.item == 0, EvaluationTally.count), else_=0)).label(
                "raters"
            ),
            func.sum(
                case((EvaluationTally.level < satisfied_levels, EvaluationTally.count), else_=0)
            ).label("satisfied"),
            func.sum(EvaluationTally.count).label("choices"),
        )
        .where(
            EvaluationTally.round_id == round_id,
            *_in_scope(EvaluationTally, round_id, branch_id, target),
        )
        .group_by(EvaluationTally.target)
        .subquery()
    )
    result = await session.exec(
        select(
            EvaluationTarget.target,
            EvaluationTarget.kind,
            EvaluationTarget.branch_id,
            func.coalesce(counts.c.raters, 0),
            func.coalesce(counts.c.satisfied, 0),
            func.coalesce(counts.c.choices, 0),
        )
        .outerjoin(counts, counts.c.target == EvaluationTarget.target)
        .where(
            EvaluationTarget.round_id == round_id,
            *([EvaluationTarget.branch_id == branch_id] if branch_id is not None else []),
            *([EvaluationTarget.target == target] if target is not None else []),
        )
    )
    return result.all()


def _shown(round_id: int, min_raters: int, branch_id: int | None, target: str | None):
    """The targets in scope rated by at least `min_raters` (whose figures may be shown)."""
    return (
        select(EvaluationTally.target)
        .where(
            EvaluationTally.round_id == round_id,
            EvaluationTally.item == 0,
            *_in_scope(EvaluationTally, round_id, branch_id, target),
        )
        .group_by(EvaluationTally.target)
        .having(func.sum(EvaluationTally.count) >= min_raters)
    )


async def item_counts(
    session: AsyncSession,
    *,
    round_id: int,
    min_raters: int,
    branch_id: int | None = None,
    target: str | None = None,
) -> Sequence[tuple[str, int, int, int]]:
    """(target, item, level, count) of the count rows of the targets (of a branch, or one)
    rated by at least `min_raters`: those whose figures may be shown."""
    shown = _shown(round_id, min_raters, branch_id, target)
    result = await session.exec(
        select(
            EvaluationTally.target,
            EvaluationTally.item,
            EvaluationTally.level,
            EvaluationTally.count,
        ).where(
            EvaluationTally.round_id == round_id,
            col(EvaluationTally.target).in_(shown),
            *_in_scope(EvaluationTally, round_id, branch_id, target),
        )
    )
    return result.all()


async def comments(
    session: AsyncSession, *, round_id: int, branch_id: int | None = None, target: str | None = None
) -> dict[str, list[str]]:
    result = await session.exec(
        select(EvaluationComment.target, EvaluationComment.text).where(
            EvaluationComment.round_id == round_id,
            *_in_scope(EvaluationComment, round_id, branch_id, target),
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
