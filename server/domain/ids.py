"""Identifiers and time sources, injectable so domain rules stay deterministic in tests.

UUIDv7 ids are time-ordered (RFC 9562), so rows created offline on a tablet sort
by creation time once they reach the node, and B-tree inserts stay append-mostly.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

CHINA_TZ = ZoneInfo("Asia/Shanghai")

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> str:
    """A UUIDv7 string; monotonic within this process (12-bit counter per millisecond)."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        else:
            _last_ms = ms
            _counter = 0
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & 0x3FFF_FFFF_FFFF_FFFF
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand
    return str(uuid.UUID(int=value))


def now_china() -> datetime:
    return datetime.now(CHINA_TZ)


Clock = Callable[[], datetime]

# Query codes are read aloud and typed from paper receipts: no 0/O, 1/I/L.
_QUERY_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def query_code(length: int = 8) -> str:
    return "".join(secrets.choice(_QUERY_ALPHABET) for _ in range(length))
