"""Failed sign-ins counted per (account name, client address), with back-off (hardening issue, item 11).

Locking an *account* after five wrong passwords let anyone on the LAN lock any colleague out, forever,
and answered 423 only for names that exist. So failures are counted per account name **and** client:
the person at their own tablet still signs in while another machine is locked out; an unknown name is
counted and locked exactly like a real one (same answers, and the caller verifies a dummy password hash
so both cost the same); each further lock doubles its length (capped at a day). A street admin lifts
the locks of an account with ``streetnode user unlock``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlite_utils import Database

__all__ = ["MAX_LOCKOUT", "clear", "locked_until", "record_failure", "unlock"]

MAX_LOCKOUT = timedelta(hours=24)


def _name(username: str) -> str:
    return username.strip().lower()[:128]


def locked_until(db: Database, username: str, client: str, now: datetime) -> str | None:
    row = db.execute("SELECT locked_until FROM login_failures WHERE username = ? AND client = ?",
                     [_name(username), client]).fetchone()
    if row is None or row[0] is None or row[0] <= now.isoformat():
        return None
    return str(row[0])


def record_failure(db: Database, username: str, client: str, now: datetime, max_failures: int,
                   lockout: timedelta) -> bool:
    """Count one failure; lock this (name, client) after ``max_failures``. Returns True if now locked."""
    name = _name(username)
    row = db.execute("SELECT failures, locks FROM login_failures WHERE username = ? AND client = ?",
                     [name, client]).fetchone()
    failures, locks = (int(row[0]) + 1, int(row[1])) if row else (1, 0)
    until: str | None = None
    if failures >= max_failures:
        locks += 1
        until = (now + min(lockout * 2 ** (locks - 1), MAX_LOCKOUT)).isoformat()
        failures = 0
    db.execute(
        "INSERT INTO login_failures (username, client, failures, locks, locked_until, last_at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(username, client) DO UPDATE SET failures = excluded.failures, locks = excluded.locks,"
        " locked_until = excluded.locked_until, last_at = excluded.last_at",
        [name, client, failures, locks, until, now.isoformat()],
    )
    return until is not None


def clear(db: Database, username: str, client: str) -> None:
    """A successful sign-in forgets this client's failures (and its back-off)."""
    db.execute("DELETE FROM login_failures WHERE username = ? AND client = ?", [_name(username), client])


def unlock(db: Database, username: str) -> int:
    """Lift every lock of an account name, from every client; returns how many were lifted."""
    return db.execute("DELETE FROM login_failures WHERE username = ?", [_name(username)]).rowcount
