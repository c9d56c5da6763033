"""Updates per second through the whole application, against the echo floor of the same run."""

from bench.harness import bot_on_sqlite_file, echo_floor, peak_memory_mb, timed
from bot.channels.local.chat import Person
from bot.channels.telegram.local_chat import LocalChat
from bot.cli import demo

# A member's ordinary traffic: commands, a button, free text, and a stranger knocking.
MIX = ["/help", "/lang", "tap", "你好", "/start", "/cancel", "/invites", "stranger"]


async def _play(chat: LocalChat, everyone: list[Person], rounds: int) -> int:
    stranger = Person(9_999_999, "访客")
    count = 0
    for index in range(rounds):
        # Each person plays the whole mix in turn, so a button is pressed by whoever got it.
        person = everyone[(index // len(MIX)) % len(everyone)]
        step = MIX[index % len(MIX)]
        if step == "tap":
            await chat.press(person, "lang:zh_CN")
        elif step == "stranger":
            await chat.send(stranger, "/start")
        else:
            await chat.send(person, step)
        count += 1
    return count


async def run(scale: float = 1.0) -> list[dict]:
    rounds = int(4000 * scale)
    async with bot_on_sqlite_file() as (runtime, chat):
        await demo.seed(runtime)
        everyone = await demo.demo_people(runtime)
        await _play(chat, everyone, 200)  # warm up caches and the connection pool
        app_seconds = await timed(lambda: _play(chat, everyone, rounds))
    async with echo_floor() as floor_chat:
        await _play(floor_chat, everyone, 200)
        floor_seconds = await timed(lambda: _play(floor_chat, everyone, rounds))
    app_rate, floor_rate = rounds / app_seconds, rounds / floor_seconds
    return [
        {
            "benchmark": "updates_per_second",
            "database": "sqlite-file",
            "updates": rounds,
            "app_per_s": round(app_rate, 1),
            "floor_per_s": round(floor_rate, 1),
            "ratio_to_floor": round(app_rate / floor_rate, 3),
            "target_ratio": 0.35,
            "peak_memory_mb": peak_memory_mb(),
            "target_memory_mb": 150,
        }
    ]
