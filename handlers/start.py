"""/start: onboarding through a personal invite link, or a greeting."""

from bot.core import access, onboarding
from bot.core.access import Actor, Permission
from bot.core.evaluation_codes import looks_like_code
from bot.core.onboarding import Redemption
from handlers import rating
from handlers.gate import Turn, gated, welcome
from handlers.routes import Command, Feature


@gated(Permission.START)
async def start(turn: Turn) -> None:
    """Bind the account when a token came with /start; otherwise greet."""
    payload = turn.args[0] if turn.args else ""
    if not payload:
        if turn.actor is None:
            turn.reply("not_member")
        else:
            turn.reply(
                "welcome_back", name=turn.actor.name, commands=access.commands_for(turn.actor.roles)
            )
        return
    if looks_like_code(payload):
        await rating.open_code(turn, payload)
        return
    result = await onboarding.redeem(
        turn.session,
        token=payload,
        account=turn.account,
        now=turn.now,
    )
    if result.outcome is Redemption.INVALID:
        turn.reply("invite_invalid")
    elif result.outcome is Redemption.ACCOUNT_TAKEN:
        turn.reply("invite_account_taken", name=result.member.name)
    else:
        actor = Actor.of(result.member, account=result.account)
        turn.locale = turn.runtime.messages.locale_for(actor.locale, turn.inbound.language)
        if result.outcome is Redemption.BOUND:
            await welcome(turn, actor)
        else:
            turn.reply("welcome_back", name=actor.name, commands=access.commands_for(actor.roles))
        turn.afterwards(lambda: turn.channel.publish_menu(turn.inbound.chat, actor, clear=True))


FEATURE = Feature(commands=(Command("start", start),))
