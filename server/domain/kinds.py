"""The registry of case kinds. Each feature declares its kind as data and registers it."""

from __future__ import annotations

from server.domain.engine import CaseKind, RuleViolation

REGISTRY: dict[str, CaseKind] = {}


def register(kind: CaseKind) -> CaseKind:
    REGISTRY[kind.name] = kind
    return kind


def get_kind(name: str) -> CaseKind:
    kind = REGISTRY.get(name)
    if kind is None:
        raise RuleViolation("invalid", "unknown_kind", f"未知的事项类型：{name}", "kind")
    return kind
