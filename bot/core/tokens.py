"""Secret tokens in links (invites, evaluation codes): the database keeps only their digests.

A token is random and long, so a plain SHA-256 is enough: nobody can guess one from its
digest, and a stolen database (or backup) binds no account and opens no ballot.
"""

import hashlib


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
