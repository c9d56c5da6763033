"""The features' conversation steps, one module per feature, written for every channel."""

from handlers import (
    campaign,
    commendation,
    conversation,
    digests,
    evaluation,
    help,
    invites,
    language,
    pledges,
    rating,
    reachability,
    rectification,
    reviews,
    start,
    summaries,
)
from handlers.routes import Routes

FEATURES = (
    start.FEATURE,
    invites.FEATURE,
    language.FEATURE,
    campaign.FEATURE,
    rating.FEATURE,  # ahead of the rest: its hooks see words and commands first
    pledges.FEATURE,
    summaries.FEATURE,
    reviews.FEATURE,
    rectification.FEATURE,
    evaluation.FEATURE,
    digests.FEATURE,
    commendation.FEATURE,
    help.FEATURE,
)


def routes() -> Routes:
    return Routes(
        FEATURES,
        words=conversation.route,
        not_understood=help.not_understood,
        stale_button=help.stale_button,
        edited=help.edit_not_taken,
        reachability=reachability.private_chat_changed,
    )
