"""The local chat: people typing in a terminal or a test, the bot answering in the same process."""

# The channel's name in channel accounts, outbox rows and the intake.
CHANNEL = "local"
