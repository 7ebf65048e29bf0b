"""Password policy: 8 to 128 characters, every one counts, common passwords refused."""

from functools import lru_cache
from pathlib import Path

MIN_LENGTH = 8
MAX_LENGTH = 128
_DATA = Path(__file__).parent / "data" / "common_passwords.txt"


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    lines = _DATA.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def check_password_policy(password: str) -> str:
    """Return the password, or raise ValueError with a message that never echoes it."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"Password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise ValueError(f"Password must be at most {MAX_LENGTH} characters long")
    if password.lower() in common_passwords():
        raise ValueError(
            "This password is one of the most commonly used passwords and is easy to guess; "
            "choose another"
        )
    return password
