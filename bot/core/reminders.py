"""Reminders: work out from the calendar and the members what is due, once, into the outbox;
and say, when a row's turn comes, whether it is still worth sending and what it says.

Nothing here depends on a scheduler's memory: each run reads the database and the clock,
plans every reminder whose moment has passed and that was never planned, and skips the
ones that became pointless (a later reminder of the same deadline supersedes an earlier
one missed while the bot was down; a deadline long passed is not chased).
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import digest_notices, evaluation, evaluation_notices, rectification
from bot.core.access import parse_roles
from bot.core.actions import Button
from bot.core.calendar import CampaignTime, ReportStepDone, applies_to
from bot.core.notices import Composed, Notice, undeliverable
from storage import accounts, outbox, people
from storage import calendar as calendar_queries
from storage.models import (
    Audience,
    Campaign,
    CampaignPhase,
    CampaignStep,
    Category,
    Member,
    OutboxMessage,
    Role,
    StepKind,
)
from storage.outbox import Recipients

PHASE_START = "phase_start"
STEP_OPEN = "step_open"
DUE_SOON = "step_due_soon"
DUE_TODAY = "step_due_today"
OVERDUE = "step_overdue"
GENTLE = "step_gentle"  # 年老体弱: one kind reminder per deadline, nothing more
BRANCH_OVERDUE = "branch_overdue"  # to the secretary: who in the branch has not done it
# Announcements a member may mute; deadline reminders of their own are never muted.
ANNOUNCEMENTS = frozenset({PHASE_START, STEP_OPEN})
# Each later one makes the earlier ones of the same deadline stale.
_CHASE = (DUE_SOON, DUE_TODAY, OVERDUE)
OVERDUE_USEFUL_FOR = timedelta(days=7)
# A summary draft left alone this long gets one friendly nudge.
DRAFT_IDLE = timedelta(days=1)
DRAFT_NUDGE_USEFUL_FOR = timedelta(days=3)
# Rows a broadcast keeps waiting in the outbox at most; the rest is written as they go out
# (a tick every few minutes; Telegram sends 1,800 a minute at most).
BROADCAST_BATCH = 10_000


@dataclass(frozen=True)
class Trigger:
    reminder: str
    subject: str
    fires_at: datetime
    expires_at: datetime
    phase: CampaignPhase | None = None
    step: CampaignStep | None = None


def phase_subject(phase: CampaignPhase) -> str:
    # The date is part of the subject: a phase moved to another day is a new announcement.
    return f"phase:{phase.id}@{phase.starts_on}"


def step_subject(step: CampaignStep) -> str:
    # Likewise a step whose dates moved: its reminders are planned afresh for the new dates.
    return f"step:{step.id}@{step.opens_on}/{step.due_on}"


def triggers(
    time: CampaignTime, phases: Sequence[CampaignPhase], steps: Sequence[CampaignStep]
) -> list[Trigger]:
    """Every reminder the calendar implies, with when it fires and until when it is useful."""
    found = [
        Trigger(
            PHASE_START,
            phase_subject(p),
            time.reminder_on(p.starts_on),
            time.end_of(p.ends_on),
            phase=p,
        )
        for p in phases
    ]
    for step in steps:
        subject, due_end = step_subject(step), time.end_of(step.due_on)
        soon = step.due_on - timedelta(days=time.remind_days_before)
        has_soon = step.opens_on < soon < step.due_on
        overdue = time.reminder_on(step.due_on + timedelta(days=1))
        found.append(
            Trigger(STEP_OPEN, subject, time.reminder_on(step.opens_on), due_end, step=step)
        )
        if has_soon:
            found.append(Trigger(DUE_SOON, subject, time.reminder_on(soon), due_end, step=step))
        if step.opens_on < step.due_on:  # otherwise the opening already says "today"
            found.append(
                Trigger(DUE_TODAY, subject, time.reminder_on(step.due_on), due_end, step=step)
            )
        gentle_at = time.reminder_on(soon if has_soon else step.due_on)
        found.append(Trigger(GENTLE, subject, gentle_at, due_end, step=step))
        if step.known_since >= due_end:
            continue  # the deadline had passed before anyone knew of it: nobody is chased
        found.append(Trigger(OVERDUE, subject, overdue, overdue + OVERDUE_USEFUL_FOR, step=step))
        if step.audience == "everyone":
            found.append(
                Trigger(BRANCH_OVERDUE, subject, overdue, overdue + OVERDUE_USEFUL_FOR, step=step)
            )
    return found


_AUDIENCE_ROLES = {
    Audience.EVERYONE: None,
    Audience.SECRETARIES: (Role.SECRETARY.value,),
    Audience.LEADERS: (Role.LEADER.value, Role.PARTY_SECRETARY.value),
}


def recipients_of(trigger: Trigger, organisation_id: int) -> Recipients:
    """Who a reminder is for: 分类指导 and "only those who have not done it yet", as rules."""
    if trigger.phase is not None:
        return Recipients(organisation_id)
    step = trigger.step
    if trigger.reminder == BRANCH_OVERDUE:
        return Recipients(organisation_id, secretaries_behind_on=step.id)
    # 年老体弱 members get the gentle reminder and nothing else of a deadline.
    elderly = trigger.reminder == GENTLE
    return Recipients(
        organisation_id,
        roles=_AUDIENCE_ROLES[Audience(step.audience)],
        elderly=elderly,
        not_done_step=step.id,
    )


async def _calendar(
    session: AsyncSession, organisation_id: int
) -> tuple[CampaignTime, list[Trigger]] | None:
    """The campaign's time rules and every reminder its calendar implies."""
    campaign = await session.get(Campaign, organisation_id)
    if campaign is None:
        return None
    time = CampaignTime.of(campaign)
    phases = await calendar_queries.list_phases(session, organisation_id=organisation_id)
    steps = await calendar_queries.list_steps(session, organisation_id=organisation_id)
    return time, triggers(time, phases, steps)


async def _unplanned(
    session: AsyncSession, organisation_id: int
) -> tuple[CampaignTime, list[Trigger]] | None:
    """The campaign's time rules and every reminder it implies that was never planned."""
    calendar = await _calendar(session, organisation_id)
    if calendar is None:
        return None
    planned = await outbox.planned_reminders(session, organisation_id=organisation_id)
    time, every = calendar
    return time, [t for t in every if (t.reminder, t.subject) not in planned]


@dataclass
class PlanReport:
    planned: dict[str, int] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return sum(self.planned.values())


def _live(fired: list[Trigger], now: datetime) -> set[tuple[str, str]]:
    """The fired reminders still worth sending: not expired, and not superseded by a later
    reminder of the same deadline."""
    latest_chase: dict[str, datetime] = {}
    for t in fired:
        if t.reminder in _CHASE and t.expires_at > now:
            latest_chase[t.subject] = max(latest_chase.get(t.subject, t.fires_at), t.fires_at)
    return {
        (t.reminder, t.subject)
        for t in fired
        if t.expires_at > now
        and not (t.reminder in _CHASE and t.fires_at < latest_chase.get(t.subject, t.fires_at))
    }


async def _write_batch(
    session: AsyncSession,
    t: Trigger,
    organisation_id: int,
    after: outbox.Written,
    budget: int,
) -> tuple[int, outbox.Written | None]:
    """Write the reminder's next recipients, at most `budget` of them, leaders first: how many
    were written, and how far (None: all of them)."""
    recipients = recipients_of(t, organisation_id)
    written = 0
    while budget > written:
        through = await outbox.next_batch_ends(
            session, recipients=recipients, after=after, size=budget - written
        )
        written += await outbox.insert_recipients(
            session,
            recipients=recipients,
            reminder=t.reminder,
            subject=t.subject,
            step_id=t.step.id if t.step else None,
            send_after=t.fires_at,
            expires_at=t.expires_at,
            after=after,
            through=through,
        )
        if through is not None:
            return written, outbox.Written(after.priority, through)
        if after.priority == outbox.PRIORITIES[-1]:
            return written, None
        after = outbox.Written(after.priority + 1, 0)
    return written, after


async def plan(
    session: AsyncSession, *, organisation_id: int, now: datetime, batch: int = BROADCAST_BATCH
) -> PlanReport:
    """Put every reminder that fell due and was never planned into the outbox, once.

    A few queries to read the calendar, then a statement or two per reminder that fell due,
    whatever the number of members: the database selects the recipients itself. The outbox
    holds at most about `batch` rows waiting: a reminder to more is written batch by batch as
    the senders catch up, so a province's announcement costs a tick no more than a branch's.
    """
    report = PlanReport()
    # 群众评议 rounds have their own times, campaign file or not.
    notices = await evaluation_notices.plan_reminders(
        session, organisation_id=organisation_id, now=now
    )
    if notices:
        report.planned["evaluation"] = notices
    calendar = await _calendar(session, organisation_id)
    if calendar is None:
        return report
    time, every = calendar
    fired = [t for t in every if t.fires_at <= now]
    live = _live(fired, now)
    budget = max(batch - await outbox.waiting(session, organisation_id=organisation_id), 0)
    by_key = {(t.reminder, t.subject): t for t in fired}
    for marker in await outbox.expanding_reminders(session, organisation_id=organisation_id):
        key = (marker.reminder, marker.subject)
        count, written = 0, None  # expired or superseded: no more of it
        if key in live:
            after = outbox.Written(marker.written_priority, marker.written_member_id)
            count, written = await _write_batch(
                session, by_key[key], organisation_id, after, budget
            )
        budget -= count
        report.planned[":".join(key)] = count
        marker.recipients += count
        marker.expanding = written is not None
        if written is not None:
            marker.written_priority, marker.written_member_id = written.priority, written.member_id
        session.add(marker)
    planned = await outbox.planned_reminders(session, organisation_id=organisation_id)
    markers = []
    for t in fired:
        if (t.reminder, t.subject) in planned:
            continue
        key = f"{t.reminder}:{t.subject}"
        count, written = 0, None
        if (t.reminder, t.subject) in live:
            count, written = await _write_batch(
                session, t, organisation_id, outbox.Written(), budget
            )
            budget -= count
        if not count and written is None:
            report.stale.append(key)
        report.planned[key] = count
        markers.append(
            {
                "reminder": t.reminder,
                "subject": t.subject,
                "organisation_id": organisation_id,
                "planned_at": now,
                "recipients": count,
                "expanding": written is not None,
                "written_priority": written.priority if written else 0,
                "written_member_id": written.member_id if written else 0,
            }
        )
    await outbox.mark_planned(session, markers=markers)
    weekly = await digest_notices.plan(
        session,
        campaign=await session.get(Campaign, organisation_id),
        time=time,
        planned=await outbox.planned_reminders(session, organisation_id=organisation_id),
        now=now,
    )
    if weekly:
        report.planned[digest_notices.WEEKLY] = weekly
    items = await rectification.plan_reminders(
        session, organisation_id=organisation_id, time=time, now=now
    )
    if items:
        report.planned["rectification"] = items
    nudges = await outbox.insert_draft_nudges(
        session,
        organisation_id=organisation_id,
        idle_since=now - DRAFT_IDLE,
        now=now,
        expires_at=now + DRAFT_NUDGE_USEFUL_FOR,
    )
    if nudges:
        report.planned[outbox.DRAFT_NUDGE] = nudges
    return report


async def next_work(
    session: AsyncSession, *, organisation_id: int, after: datetime
) -> datetime | None:
    """When planning or sending next has something to do after `after` (None: nothing known)."""
    round_notice = await evaluation_notices.next_reminder(
        session, organisation_id=organisation_id, after=after
    )
    calendar = await _unplanned(session, organisation_id)
    if calendar is None:
        return max(round_notice, after) if round_notice else None
    time, unplanned = calendar
    moments = [t.fires_at for t in unplanned]
    if round_notice is not None:
        moments.append(round_notice)
    pending = await outbox.earliest_pending(session, organisation_id=organisation_id)
    if pending is not None:
        moments.append(pending)
    if await outbox.expanding_reminders(session, organisation_id=organisation_id):
        moments.append(after)  # a broadcast's next batch
    item_reminder = await rectification.next_reminder(
        session, organisation_id=organisation_id, time=time, after=after
    )
    if item_reminder is not None:
        moments.append(item_reminder)
    weekly = await digest_notices.next_digest(
        session, campaign=await session.get(Campaign, organisation_id), time=time, after=after
    )
    if weekly is not None:
        moments.append(weekly)
    idle_draft = await outbox.earliest_idle_draft(session, organisation_id=organisation_id)
    if idle_draft is not None:
        moments.append(idle_draft + DRAFT_IDLE)
    if not moments:
        return None
    soonest = max(min(moments), after)
    return time.after_quiet(soonest) if time.is_quiet(soonest) else soonest


# --- what a row says, when its turn comes ------------------------------------------------


async def compose(
    session: AsyncSession, *, messages: Sequence[OutboxMessage], now: datetime, today: date
) -> Composed:
    """Decide for each claimed row whether it is still worth sending, and what it says."""
    composed = Composed()
    if not messages:
        return composed
    members = await people.members_by_id(session, ids=(m.member_id for m in messages))
    step_ids = {m.step_id for m in messages if m.step_id}
    steps = {
        s.id: s
        for s in (
            await session.exec(select(CampaignStep).where(col(CampaignStep.id).in_(step_ids)))
        ).all()
    }
    phase_ids = {_phase_id(m.subject) for m in messages if m.subject.startswith("phase:")}
    phases = {
        p.id: p
        for p in (
            await session.exec(select(CampaignPhase).where(col(CampaignPhase.id).in_(phase_ids)))
        ).all()
    }
    done = await calendar_queries.done_pairs(session, step_ids=list(step_ids))
    # 整改落实 is done item by item: only those with items still open are chased for it.
    if any(s.kind == StepKind.RECTIFICATION for s in steps.values()):
        rectifying = await rectification.answerable_for_open_items(
            session, organisation_id=messages[0].organisation_id
        )
        done |= {
            (s.id, m) for s in steps.values() if s.kind == StepKind.RECTIFICATION for m in members
        } - {(s.id, m) for s in steps.values() for m in rectifying}
    # 群众评议: those who have rated everyone in the quarter's round have done their part;
    # while no round has been opened for the quarter there is nothing to rate, so nobody
    # is chased for it (the round's own notice goes out when it opens).
    evaluating = [s for s in steps.values() if s.kind == StepKind.EVALUATION and s.quarter]
    unopened: set[int] = set()
    if evaluating:
        finished = await evaluation.finished_raters(
            session,
            organisation_id=messages[0].organisation_id,
            quarters={s.quarter for s in evaluating},
        )
        done |= {(s.id, m) for s in evaluating for m in finished.get(s.quarter, ())}
    unopened = {s.id for s in evaluating if s.quarter not in finished}
    behind = await _behind_by_branch(session, messages, members, steps, done)
    for message in messages:
        member = members.get(message.member_id)
        step = steps.get(message.step_id) if message.step_id else None
        phase = (
            phases.get(_phase_id(message.subject)) if message.subject.startswith("phase:") else None
        )
        reason = _skip_reason(message, member, step, phase, done, now, today)
        if step is not None and step.id in unopened:
            reason = "no round of 群众评议 opened"
        if reason:
            composed.skipped[message.id] = reason
            continue
        # A secretary is not told to turn to the branch secretary for help.
        values: dict = {
            "name": member.name,
            "secretary": Role.SECRETARY in parse_roles(member.roles),
        }
        if phase is not None:
            values["phase"] = phase
        else:
            values["step"] = step
            values["days_left"] = (step.due_on - today).days
        if message.reminder == BRANCH_OVERDUE:
            # Never the secretary in their own list.
            values["behind"] = [
                n for i, n in behind.get((step.id, member.branch_id), []) if i != member.id
            ]
            values["unreachable"] = [
                n for i, n in behind.get((None, member.branch_id), []) if i != member.id
            ]
            if not values["behind"]:
                composed.skipped[message.id] = "everyone caught up"
                continue
        buttons = (
            (Button("button_done", ReportStepDone(step.id), {"step": step}),)
            if step is not None
            and step.kind == StepKind.TASK
            and message.reminder != BRANCH_OVERDUE
            else ()
        )
        composed.notices.append(
            Notice(message.id, member, f"reminder_{message.reminder}", values, buttons)
        )
    return composed


def _phase_id(subject: str) -> int:
    return int(subject.split(":")[1].split("@")[0])


def _skip_reason(message, member, step, phase, done, now, today) -> str | None:
    """Why a planned message is no longer worth sending, if it is not."""
    if reason := undeliverable(member):
        return reason
    if message.expires_at <= now:
        return "too late"
    if member.reminders_muted and message.reminder in ANNOUNCEMENTS:
        return "muted"
    if message.subject.startswith("phase:"):
        return (
            None
            if phase is not None and message.subject == phase_subject(phase)
            else "phase moved or removed"
        )
    if step is None or not step.active:
        return "step removed"
    if message.reminder == outbox.DRAFT_NUDGE:
        return "already done" if (step.id, member.id) in done else None
    if message.subject != step_subject(step):
        return "dates changed"
    if message.reminder == DUE_SOON and step.due_on <= today:
        return "superseded by the day itself"
    roles = parse_roles(member.roles)
    if message.reminder == BRANCH_OVERDUE:
        return None if Role.SECRETARY in roles else "no longer a secretary"
    if not applies_to(step, roles):
        return "no longer asked of them"
    elderly = member.category == Category.ELDERLY
    if (
        elderly != (message.reminder == GENTLE)
        and message.reminder != STEP_OPEN
        or (elderly and message.reminder == STEP_OPEN)
    ):
        return "分类指导: the other kind of reminder is theirs"
    if (step.id, member.id) in done:
        return "already done"
    return None


async def _behind_by_branch(
    session, messages, members, steps, done
) -> dict[tuple[int, int], list[str]]:
    """(step id, branch id) → (id, name) of those who have not done it, for secretaries'
    notices; (None, branch id) → those who blocked the bot, so the secretary can reach out."""
    wanted = {
        (m.step_id, members[m.member_id].branch_id)
        for m in messages
        if m.reminder == BRANCH_OVERDUE and m.member_id in members and m.step_id in steps
    }
    if not wanted:
        return {}
    branch_ids = {branch_id for _, branch_id in wanted}
    rows = (
        await session.exec(
            select(Member, accounts.is_unreachable(Member.id))
            .where(col(Member.branch_id).in_(branch_ids), Member.active)
            .order_by(Member.id)
        )
    ).all()
    everyone = [member for member, _unreachable in rows]
    behind: dict[tuple[int | None, int], list[tuple[int, str]]] = defaultdict(list)
    for member, unreachable in rows:
        if unreachable:
            behind[(None, member.branch_id)].append((member.id, member.name))
    for step_id, branch_id in wanted:
        step = steps[step_id]
        for member in everyone:
            if (
                member.branch_id == branch_id
                and applies_to(step, parse_roles(member.roles))
                and (step_id, member.id) not in done
            ):
                behind[(step_id, branch_id)].append((member.id, member.name))
    return behind
