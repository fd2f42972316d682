"""Admin users of the dashboard: create, authenticate (argon2, slowed after failures), change
or reset a password, and say whether a remembered login still counts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dealmail.errors import AlreadyExists, DomainError, InvalidInput, NotFound
from dealmail.models import AdminUser, utcnow
from dealmail.security import generate_password, hash_password, verify_password

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_LENGTH = 10
FREE_FAILURES = 3
MAX_LOCK = timedelta(minutes=15)


@dataclass(frozen=True)
class CreatedUser:
    username: str
    password: str
    generated: bool


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AdminUser)) or 0


def add_user(session: Session, username: str, password: str | None = None) -> CreatedUser:
    if not USERNAME_RE.match(username):
        raise InvalidInput(
            "a user name is 1-64 letters, digits or . _ @ -", code="invalid_username"
        )
    if password is not None:
        _check_strength(password)
    if session.scalar(select(AdminUser.id).where(AdminUser.username == username)) is not None:
        raise AlreadyExists(f"user {username!r} already exists", code="user_exists")
    generated = password is None
    password = password or generate_password()
    session.add(AdminUser(username=username, password_hash=hash_password(password)))
    session.commit()
    return CreatedUser(username=username, password=password, generated=generated)


def authenticate(
    session: Session, username: str, password: str, now: datetime | None = None
) -> AdminUser:
    """The user if the password matches; failures lock the account for a growing while."""
    now = now or utcnow()
    user = _verified(session, username, password, now)
    user.last_login_at = now
    session.commit()
    return user


def change_password(
    session: Session,
    username: str,
    current: str,
    new: str,
    now: datetime | None = None,
) -> None:
    """The user's own change: the current password is checked (and throttled) as at login."""
    _check_strength(new)
    if new == current:
        raise InvalidInput("the new password is the current one", code="same_password")
    try:
        user = _verified(session, username, current, now or utcnow())
    except DomainError as error:
        if error.code != "bad_credentials":
            raise
        raise DomainError(
            "the current password is wrong", code="wrong_password", http_status=403
        ) from error
    user.password_hash = hash_password(new)
    user.sessions_valid_after = utcnow()
    session.commit()


def reset_password(session: Session, username: str, password: str | None = None) -> CreatedUser:
    """Set a forgotten password from the machine's shell (generated unless given); lifts a lock."""
    if password is not None:
        _check_strength(password)
    user = _user(session, username)
    if user is None:
        raise NotFound(f"no user {username!r}", code="user_not_found")
    generated = password is None
    password = password or generate_password()
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    user.sessions_valid_after = utcnow()
    session.commit()
    return CreatedUser(username=username, password=password, generated=generated)


def end_sessions(session: Session, username: str) -> None:
    """Log out: every remembered login of this user made before now stops counting."""
    user = _user(session, username)
    if user is not None:
        user.sessions_valid_after = utcnow()
        session.commit()


def remembered_user(session: Session, username: str, logged_in_at: datetime) -> str | None:
    """The user a remembered login names, unless it is disabled or logged out (or changed its
    password) since that login."""
    user = _user(session, username)
    if user is None or user.disabled:
        return None
    if user.sessions_valid_after is not None and logged_in_at <= user.sessions_valid_after:
        return None
    return user.username


def _user(session: Session, username: str) -> AdminUser | None:
    return session.scalar(select(AdminUser).where(AdminUser.username == username))


def _check_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters", code="weak_password"
        )


def _verified(session: Session, username: str, password: str, now: datetime) -> AdminUser:
    """The user whose password this is; a failure is committed (it counts) before it raises."""
    user = _user(session, username)
    if user is None or user.disabled:
        raise DomainError("wrong user name or password", code="bad_credentials", http_status=401)
    if user.locked_until is not None and user.locked_until > now:
        wait = int((user.locked_until - now).total_seconds()) + 1
        raise DomainError(
            f"too many failed attempts; try again in {wait} s",
            code="login_throttled",
            http_status=429,
            detail={"retry_after": wait},
        )
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= FREE_FAILURES:
            delay = timedelta(seconds=2 ** (user.failed_logins - FREE_FAILURES + 1))
            user.locked_until = now + min(delay, MAX_LOCK)
        session.commit()
        raise DomainError("wrong user name or password", code="bad_credentials", http_status=401)
    user.failed_logins = 0
    user.locked_until = None
    return user
