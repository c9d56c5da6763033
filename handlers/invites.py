"""/invites: a secretary hands out personal links, or a new one to a member with a new phone."""

from datetime import timedelta

from telegram.ext import BaseHandler, CommandHandler, filters

from bot.core import access, onboarding
from bot.core.access import Permission
from handlers.gate import Turn, gated
from storage import people


@gated(Permission.BRANCH_OVERSIGHT)
async def list_invites(turn: Turn) -> None:
    """Links for the unbound members I look after; `/invites NAME [BRANCH]` renews one link."""
    name = turn.args[0] if turn.args else None
    branch_id = access.overseen_branch(turn.actor)
    if len(turn.args) > 1 and branch_id is None:
        branch_name = " ".join(turn.args[1:])
        branch = await people.get_branch_by_name(
            turn.session, organisation_id=turn.actor.organisation_id, name=branch_name
        )
        if branch is None:
            turn.reply("invites_unknown_branch", branch=branch_name)
            return
        branch_id = branch.id
    try:
        issued = await onboarding.issue_invites(
            turn.session,
            now=turn.now,
            valid_for=timedelta(days=turn.runtime.settings.invite_days),
            branch_id=branch_id,
            member_name=name,
        )
    except onboarding.AmbiguousMember as ambiguous:
        turn.reply("invites_ambiguous", name=name, branches=ambiguous.branches)
        return
    if name and not issued:
        turn.reply("invites_unknown_member", name=name)
        return
    username = turn.context.bot.username
    turn.reply(
        "invites",
        renewed=name is not None,
        invites=[(i.branch_name, i.member.name, i.link(username), i.expires_at) for i in issued],
    )


def handlers() -> list[BaseHandler]:
    return [CommandHandler("invites", list_invites, filters=filters.ChatType.PRIVATE)]
