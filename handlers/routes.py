"""Which handler takes an inbound event: the features' declarations, tried in one order.

Every channel hands its events here (`dispatch`); a feature declares its commands and the
actions its buttons carry (`Feature`), and its conversation steps with `@flow`. The order:
an edit is answered and stops; a ballot waiting for its comment takes the next words, and a
command drops a ballot in progress first; then the command or action's own handler; words go
to the conversation the member is in; what nobody takes gets a polite answer.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from bot.core.actions import Action
from bot.core.contract import Channel, Inbound, Kind
from bot.runtime import Runtime
from handlers.gate import Handler

# A hook ahead of the handlers: True when it took the event.
Hook = Callable[[Inbound, Channel, Runtime], Awaitable[bool]]


@dataclass(frozen=True)
class Command:
    """A command a feature answers, and where: the member's private chat or a group."""

    name: str
    handler: Handler
    where: Literal["private", "groups"] = "private"


@dataclass(frozen=True)
class Feature:
    """What one feature answers: commands, actions by their type, and hooks tried first."""

    commands: Sequence[Command] = ()
    actions: Mapping[type[Action], Handler] = field(default_factory=dict)
    before_words: Hook | None = None
    before_command: Hook | None = None


class Routes:
    """The features' declarations, merged once; `dispatch` takes one event."""

    def __init__(
        self,
        features: Sequence[Feature],
        *,
        words: Handler,
        not_understood: Handler,
        stale_button: Handler,
        edited: Handler,
        reachability: Handler,
    ) -> None:
        self.features = features
        self.commands: dict[str, Command] = {}
        self.actions: dict[type[Action], Handler] = {}
        for feature in features:
            for command in feature.commands:
                if command.name in self.commands:
                    raise ValueError(f"command /{command.name} is declared twice")
                self.commands[command.name] = command
            for action, handler in feature.actions.items():
                if action in self.actions:
                    raise ValueError(f"action {action.__name__} is declared twice")
                self.actions[action] = handler
        self._words = words
        self._not_understood = not_understood
        self._stale_button = stale_button
        self._edited = edited
        self._reachability = reachability

    async def dispatch(self, inbound: Inbound, channel: Channel, runtime: Runtime) -> None:
        if inbound.account is None:
            return
        kind = inbound.kind
        if kind is Kind.EDITED:
            # What was sent stands, and whatever it now says is not acted on. Said in the
            # private chat, and in a group only to an edited command (other talk is not ours).
            if inbound.private or inbound.text.startswith("/"):
                await self._edited(inbound, channel, runtime)
        elif kind in (Kind.JOINED, Kind.BLOCKED, Kind.MOVED):
            if inbound.private:
                await self._reachability(inbound, channel, runtime)
        elif kind is Kind.ACTION:
            action = Action.parse(inbound.action)
            handler = self.actions.get(type(action)) if action else None
            await (handler or self._stale_button)(inbound, channel, runtime)
        elif kind is Kind.COMMAND:
            await self._command(inbound, channel, runtime)
        elif inbound.private:
            for feature in self.features:
                if feature.before_words and await feature.before_words(inbound, channel, runtime):
                    return
            await self._words(inbound, channel, runtime)

    async def _command(self, inbound: Inbound, channel: Channel, runtime: Runtime) -> None:
        if inbound.private:
            for feature in self.features:
                hook = feature.before_command
                if hook and await hook(inbound, channel, runtime):
                    return
        command = self.commands.get(inbound.command)
        where = "private" if inbound.private else "groups"
        if command is not None and command.where == where:
            await command.handler(inbound, channel, runtime)
        elif inbound.private:
            await self._not_understood(inbound, channel, runtime)
