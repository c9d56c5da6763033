"""Every text a person reads: templates/ (one per feature), locale/ (the translations)."""
