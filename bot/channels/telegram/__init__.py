"""The Telegram channel: python-telegram-bot's Application, its routes, pacing and sender."""
