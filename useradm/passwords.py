"""Password rules and argon2id hashing."""

from __future__ import annotations

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from common.errors import Unprocessable

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256        # characters
MAX_PASSWORD_BYTES = 1024        # UTF-8 bytes; checked before hashing

# OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): ~35 ms per hash on one core, and a
# burst of logins cannot exhaust memory the way 64 MiB x 4 lanes could on a small server.
_HASHER = argon2.PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1,
                                type=argon2.Type.ID)
# Verified against when the user does not exist, so that both cases take the same time.
_DUMMY_HASH = _HASHER.hash("not a password: equalises the timing of unknown users")


# The stored hash of a user without a password: not a hash, so nothing ever verifies against it.
NO_PASSWORD = "!"


def check_password_rules(password: str) -> None:
    """Raise Unprocessable unless the password is 8..256 characters (and at most 1024 bytes)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Unprocessable(f"password: must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(password) > MAX_PASSWORD_LENGTH or len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        raise Unprocessable(f"password: must be at most {MAX_PASSWORD_LENGTH} characters "
                            f"({MAX_PASSWORD_BYTES} bytes) long")


def hash_password(password: str) -> str:
    """argon2id hash of a password that passed check_password_rules."""
    return _HASHER.hash(password.encode("utf-8", "surrogatepass"))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches the hash. Over-long passwords never match (and are not hashed);
    a missing hash is checked against a dummy so that timing does not reveal unknown users."""
    if len(password) > MAX_PASSWORD_LENGTH or len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        return False
    usable = bool(password_hash) and password_hash != NO_PASSWORD
    try:
        ok = _HASHER.verify(password_hash if usable else _DUMMY_HASH, password.encode("utf-8", "surrogatepass"))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and usable


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than the current ones."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True
