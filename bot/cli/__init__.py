"""Command lines of `python -m bot`: roster, campaign, evaluation, commendation, demo."""
