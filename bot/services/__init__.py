"""Channel-free rules: Telegram handlers, the local chat and any future channel call these."""
