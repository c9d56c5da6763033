"""/review and /reviews: leaders review whom seed 004 assigns them; the reviewee acknowledges."""

from bot.core import access, rectification, reviews, summaries
from bot.core.access import Permission
from bot.core.reviews import (
    CONFIRM,
    AcknowledgeReview,
    ReadReview,
    ReviewStep,
    StartReview,
)
from bot.core.summaries import Quarter, Window
from handlers.conversation import flow
from handlers.gate import Turn, gated
from handlers.routes import Command, Feature
from storage import conversations
from storage.conversations import Conversation
from storage.models import Review, ReviewStatus


async def _quarter(turn: Turn) -> Quarter | None:
    """The quarter under review, or None (and the member told) before the first one opens."""
    quarter = await summaries.current_quarter(
        turn.session, organisation_id=turn.actor.organisation_id, now=turn.now
    )
    if quarter.window in (Window.NONE, Window.NOT_YET):
        turn.reply("review_not_open", quarter=quarter)
        return None
    return quarter


@gated(Permission.REVIEW)
async def list_reviewees(turn: Turn) -> None:
    """Whom I review this quarter, with what is done and what is pending."""
    quarter = await _quarter(turn)
    if quarter is None:
        return
    rows = await reviews.my_reviewees(turn.session, actor=turn.actor, step_id=quarter.step.id)
    buttons = [
        [
            (
                row.name,
                ReadReview(row.review.id)
                if row.review and row.review.status != ReviewStatus.DRAFT
                else StartReview.of(row.key),
            )
        ]
        for row in rows
    ]
    turn.reply("review_list", reviewees=rows, step=quarter.step, buttons=buttons[:60])


@gated(Permission.REVIEW)
async def start_review(turn: Turn) -> None:
    """A reviewee chosen: their material first, then the first part to write."""
    quarter = await _quarter(turn)
    if quarter is None:
        return
    review = await reviews.open_review(
        turn.session,
        actor=turn.actor,
        reviewee=turn.action.reviewee,
        quarter=quarter,
        now=turn.now,
    )
    if review is None:
        turn.notice("review_not_yours")
        return
    if review.status != ReviewStatus.DRAFT:
        if not reviews.may_read(turn.actor, review):
            turn.notice("review_not_yours")
            return
        turn.reply("review_view", **await reviews.as_read(turn.session, review=review))
        return
    material = await reviews.material(turn.session, review=review)
    turn.reply("review_material", material=material, step=quarter.step)
    await _ask(turn, review, material.subject)


async def _ask(turn: Turn, review: Review, subject: reviews.Subject | None = None) -> None:
    """Put the current part (or the preview), and remember the reviewer is writing."""
    subject = subject or await reviews.subject_of(turn.session, review=review)
    await conversations.set_state(
        turn.session,
        member_id=turn.actor.member_id,
        flow="review",
        subject_id=review.id,
        stage=review.stage,
        now=turn.now,
    )
    if review.stage == CONFIRM:
        buttons = [
            [(turn.label("button_review_send"), ReviewStep(review.id, "send"))],
            [(turn.label("button_edit"), ReviewStep(review.id, "edit"))],
        ]
        if review.problems:
            label = turn.label("button_review_track", on=review.track_problems)
            buttons.insert(1, [(label, ReviewStep(review.id, "track"))])
        turn.reply(
            "review_preview",
            review=review,
            subject=subject.name,
            raised=rectification.preview_items(review),
            due_on=await rectification.due_date(turn.session, review=review, now=turn.now),
            buttons=buttons,
        )
        return
    current = getattr(review, review.stage)
    turn.reply(
        "review_ask",
        part=review.stage,
        subject=subject.name,
        category=subject.category or "branch",
        current=current,
        refused=review.refused_text or "",
        buttons=[
            [
                (
                    turn.label("button_keep" if current else "button_skip"),
                    ReviewStep(review.id, "skip"),
                )
            ]
        ],
    )


@flow("review")
async def review_step(turn: Turn, state: Conversation) -> None:
    """A typed part of the review."""
    review = await reviews.own_draft(turn.session, actor=turn.actor, review_id=state.subject_id)
    if review is None or review.status != ReviewStatus.DRAFT:
        await conversations.clear_state(turn.session, member_id=turn.actor.member_id)
        turn.reply("button_stale")
        return
    text = turn.text.strip()
    if review.stage == CONFIRM:
        turn.reply("summary_use_buttons")
        return
    if not text:
        turn.reply("text_needed")
        return
    refused = reviews.answer(review, text=text, now=turn.now)
    if refused is not None:
        turn.refuse(refused)
        return
    await _ask(turn, review)


@gated(Permission.REVIEW)
async def review_button(turn: Turn) -> None:
    """Skip, edit, track problems, or send (the data is checked, never trusted)."""
    review = await reviews.own_draft(
        turn.session, actor=turn.actor, review_id=turn.action.review_id
    )
    action = turn.action.step
    if review is None:
        turn.notice("review_not_yours")
        return
    if review.status != ReviewStatus.DRAFT:
        turn.notice("review_already_sent")
        return
    if action == "send":
        await _send(turn, review)
        return
    if action == "edit":
        reviews.edit(review, now=turn.now)
    elif action == "track":
        reviews.toggle_problems(review, now=turn.now)
    elif not reviews.skip(review, now=turn.now, insist=action == "force"):
        if review.stage == CONFIRM or review.stage not in reviews.PARTS:
            turn.notice("button_stale")
            return
        subject = await reviews.subject_of(turn.session, review=review)
        turn.reply(
            "review_asked_for",
            part=review.stage,
            category=subject.category or "branch",
            buttons=[[(turn.label("button_review_skip_anyway"), ReviewStep(review.id, "force"))]],
        )
        return
    await _ask(turn, review)


async def _send(turn: Turn, review: Review) -> None:
    if reviews.is_empty(review):
        turn.notice("review_empty")
        return
    if not await reviews.send(turn.session, review=review, now=turn.now):
        turn.notice("review_no_recipient")
        return
    await conversations.clear_state(turn.session, member_id=turn.actor.member_id)
    subject = await reviews.subject_of(turn.session, review=review)
    items = await rectification.of_review(turn.session, review_id=review.id)
    turn.notice("saved")
    turn.reply("review_sent", subject=subject.name, items=items)
    turn.send_news()


@gated(Permission.USE)
async def acknowledge(turn: Turn) -> None:
    """The reviewee has read the review: noted once, and the button goes."""
    review = await reviews.acknowledge(
        turn.session,
        actor=turn.actor,
        review_id=turn.action.review_id,
        now=turn.now,
    )
    if review is None:
        turn.notice("button_refused")
        return
    turn.notice("review_acknowledged")
    turn.edit("review_received", **await reviews.as_read(turn.session, review=review))


@gated(Permission.USE)
async def read_review(turn: Turn) -> None:
    """A sent review, for those who may read it."""
    review = await reviews.readable_by(
        turn.session, actor=turn.actor, review_id=turn.action.review_id
    )
    if review is None:
        turn.notice("button_refused")
        return
    turn.reply("review_view", **await reviews.as_read(turn.session, review=review))


@gated(Permission.BRANCH_OVERSIGHT)
async def review_overview(turn: Turn) -> None:
    """For the secretary (the organiser: everyone): which reviews are done, delivered, read."""
    quarter = await _quarter(turn)
    if quarter is None:
        return
    rows = await reviews.branch_reviewees(
        turn.session,
        organisation_id=turn.actor.organisation_id,
        branch_id=access.overseen_branch(turn.actor),
        step_id=quarter.step.id,
    )
    buttons = [
        [(row.name, ReadReview(row.review.id))]
        for row in rows
        if row.review is not None and row.review.status != ReviewStatus.DRAFT
    ]
    turn.reply("review_overview", reviewees=rows, step=quarter.step, buttons=buttons[:60])


FEATURE = Feature(
    commands=(Command("review", list_reviewees), Command("reviews", review_overview)),
    actions={
        StartReview: start_review,
        ReviewStep: review_button,
        AcknowledgeReview: acknowledge,
        ReadReview: read_review,
    },
)
