"""The core: the campaign's rules and what to show, for every channel; no channel is imported here."""
