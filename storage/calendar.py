"""Queries on the campaign calendar: phases, steps and who has done them."""

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import CampaignPhase, CampaignStep, StepDone


async def list_phases(session: AsyncSession, *, organisation_id: int) -> Sequence[CampaignPhase]:
    result = await session.exec(
        select(CampaignPhase)
        .where(CampaignPhase.organisation_id == organisation_id)
        .order_by(CampaignPhase.starts_on)
    )
    return result.all()


async def list_steps(
    session: AsyncSession, *, organisation_id: int, active_only: bool = True
) -> Sequence[CampaignStep]:
    query = select(CampaignStep).where(CampaignStep.organisation_id == organisation_id)
    if active_only:
        query = query.where(CampaignStep.active)
    result = await session.exec(query.order_by(CampaignStep.due_on, CampaignStep.id))
    return result.all()


async def done_steps(session: AsyncSession, *, member_id: int) -> set[int]:
    result = await session.exec(select(StepDone.step_id).where(StepDone.member_id == member_id))
    return set(result.all())


async def done_pairs(session: AsyncSession, *, step_ids: Sequence[int]) -> set[tuple[int, int]]:
    """(step id, member id) for every member who has done one of these steps."""
    if not step_ids:
        return set()
    result = await session.exec(
        select(StepDone.step_id, StepDone.member_id).where(col(StepDone.step_id).in_(step_ids))
    )
    return {(step_id, member_id) for step_id, member_id in result.all()}
