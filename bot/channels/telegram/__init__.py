"""The Telegram channel: python-telegram-bot's Application, its routes, pacing and sender."""

# The channel's name in channel accounts, outbox rows and the intake.
CHANNEL = "telegram"
