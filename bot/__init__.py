"""The 创先争优 campaign assistant: application, configuration, channels and services."""
