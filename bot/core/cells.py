"""Cells of the workbooks and CSV files the bot writes: never a formula from what people typed.

A spreadsheet takes a cell starting with = + - @ (or a tab or carriage return before one) as
a formula; a roster name like `=HYPERLINK(...)` would run when the file is opened. A leading
apostrophe makes it text, and spreadsheets do not show it.
"""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert(value):
    """`value` as a cell that is never read as a formula (non-text values unchanged)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
