"""Staff accounts, password hashes and bearer tokens.

Passwords: scrypt (RFC 7914) with a per-user salt. Tokens: 32 random bytes handed to
the client once; only their sha256 is stored, so a copied database yields no usable
token. Tokens expire after one shift and are revocable (logout, admin).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from server.domain.ids import now_china, uuid7
from server.domain.roles import Principal, Role

_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, dk_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    dk = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt_b64), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(dk, base64.b64decode(dk_b64))


# Verified against when the name is unknown, so that such an attempt costs what a wrong password costs.
DUMMY_HASH = hash_password("streetnode: no such account")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class UserRow:
    id: str
    username: str
    display_name: str
    role: str
    org_unit: str
    org_path: str
    active: bool
    failed_logins: int
    locked_until: str | None
    password_hash: str

    def principal(self, device_id: str | None = None) -> Principal:
        return Principal(
            user_id=self.id,
            username=self.username,
            role=Role(self.role),
            org_unit=self.org_unit,
            org_path=self.org_path,
            display_name=self.display_name,
            device_id=device_id,
        )


_USER_COLS = "id, username, display_name, role, org_unit, org_path, active, failed_logins, locked_until, password_hash"


def _user(row: Any) -> UserRow | None:
    if row is None:
        return None
    r = dict(zip(_USER_COLS.split(", "), row, strict=True))
    r["active"] = bool(r["active"])
    return UserRow(**r)


def get_user_by_name(db: Database, username: str) -> UserRow | None:
    return _user(db.execute(f"SELECT {_USER_COLS} FROM users WHERE username = ?", [username]).fetchone())


def get_user(db: Database, user_id: str) -> UserRow | None:
    return _user(db.execute(f"SELECT {_USER_COLS} FROM users WHERE id = ?", [user_id]).fetchone())


def create_user(
    db: Database, *, username: str, display_name: str, password: str, role: Role, org_unit: str
) -> UserRow:
    row = db.execute("SELECT path FROM org_units WHERE code = ?", [org_unit]).fetchone()
    if row is None:
        raise ValueError(f"unknown org unit {org_unit}")
    user_id = uuid7()
    db.execute(
        "INSERT INTO users (id, username, display_name, password_hash, role, org_unit, org_path, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [user_id, username, display_name, hash_password(password), role.value, org_unit, row[0],
         now_china().isoformat()],
    )
    user = get_user(db, user_id)
    assert user is not None
    return user


def issue_token(db: Database, user_id: str, ttl: timedelta, device_id: str | None = None) -> tuple[str, datetime]:
    token = secrets.token_urlsafe(32)
    now = now_china()
    expires = now + ttl
    db.execute(
        "INSERT INTO tokens (token_hash, user_id, created_at, expires_at, device_id) VALUES (?, ?, ?, ?, ?)",
        [token_hash(token), user_id, now.isoformat(), expires.isoformat(), device_id],
    )
    return token, expires


@dataclass(frozen=True)
class TokenLookup:
    user: UserRow | None
    problem: str | None  # None when valid; else a Chinese reason


def lookup_token(db: Database, token: str, now: datetime) -> TokenLookup:
    row = db.execute(
        "SELECT user_id, expires_at, revoked_at FROM tokens WHERE token_hash = ?", [token_hash(token)]
    ).fetchone()
    if row is None:
        return TokenLookup(None, "登录凭证无效")
    user_id, expires_at, revoked_at = row
    if revoked_at:
        return TokenLookup(None, "登录凭证已注销，请重新登录")
    if datetime.fromisoformat(expires_at) <= now:
        return TokenLookup(None, "登录已过期，请重新登录")
    user = get_user(db, user_id)
    if user is None or not user.active:
        return TokenLookup(None, "账号已停用")
    return TokenLookup(user, None)


def revoke_token(db: Database, token: str) -> bool:
    cur = db.execute(
        "UPDATE tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
        [now_china().isoformat(), token_hash(token)],
    )
    return cur.rowcount > 0


