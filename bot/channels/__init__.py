"""Channels: each turns its native events into the core's inputs and renders the core's messages."""
