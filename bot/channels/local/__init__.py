"""The local chat: people typing in a terminal or a test, the bot answering in the same process."""
