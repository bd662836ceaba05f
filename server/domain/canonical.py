"""Canonical JSON: the byte form that hashes and signatures are computed over.

Sorted keys, no insignificant whitespace, UTF-8 (Chinese text stays as is), so a
street node, the district hub and a tablet all hash the same record identically.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode(
        "utf-8"
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(value: Any) -> str:
    """sha256 of the canonical JSON of ``value``."""
    return sha256_hex(canonical_json(value))
