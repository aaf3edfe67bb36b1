"""Credentials: random secrets handed to a user once, kept only as argon2id hashes.

A token is ``USER_ID:SECRET``; ``LEDGER_TOKEN`` carries it for the CLI. Only the hash of the
secret is stored (table ``ledger_credentials``), salted by argon2 itself, so a copy of the
database does not give anyone a credential.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: argon2id with the library's defaults (RFC 9106's second recommended profile)
HASHER = PasswordHasher()


def new_secret() -> str:
    """A credential of 192 random bits, printable and free of ``:``."""
    return secrets.token_urlsafe(24)


def hash_secret(secret: str) -> str:
    return HASHER.hash(secret)


def matches(secret_hash: str | None, secret: str) -> bool:
    """Does ``secret`` match the stored hash? (A missing hash matches nothing.)"""
    if not secret_hash:
        HASHER.hash(secret)  # the same work either way: timing does not tell which user ids exist
        return False
    try:
        return HASHER.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


def token(user_id: str, secret: str) -> str:
    return f"{user_id}:{secret}"


def parse_token(text: str) -> tuple[str, str]:
    """``USER_ID:SECRET`` → (user id, secret); a malformed token gives an empty secret."""
    user_id, _, secret = text.strip().rpartition(":")
    return (user_id, secret) if user_id else (secret, "")
