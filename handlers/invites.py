"""/invites: a secretary hands out personal links, or a new one to a member with a new phone."""

from datetime import timedelta

from bot.core import onboarding
from bot.core.access import Permission
from handlers.gate import Turn, gated
from handlers.routes import Command, Feature


@gated(Permission.BRANCH_OVERSIGHT)
async def list_invites(turn: Turn) -> None:
    """Links for the unbound members I look after; `/invites NAME [BRANCH]` renews one link."""
    name = turn.args[0] if turn.args else None
    branch_name = " ".join(turn.args[1:]) or None
    try:
        issued = await onboarding.invites_asked(
            turn.session,
            actor=turn.actor,
            member_name=name,
            branch_name=branch_name,
            now=turn.now,
            valid_for=timedelta(days=turn.runtime.settings.invite_days),
        )
    except onboarding.UnknownBranch:
        turn.reply("invites_unknown_branch", branch=branch_name)
        return
    except onboarding.AmbiguousMember as ambiguous:
        turn.reply("invites_ambiguous", name=name, branches=ambiguous.branches)
        return
    if name and not issued:
        turn.reply("invites_unknown_member", name=name)
        return
    turn.reply(
        "invites",
        renewed=name is not None,
        invites=[
            (i.branch_name, i.member.name, i.link(turn.deep_link), i.expires_at) for i in issued
        ],
    )


FEATURE = Feature(commands=(Command("invites", list_invites),))
