"""The storage seam (DESIGN.md §10): what the domain and sync code need from the store, as protocols.

A street node keeps SQLite; a city hub (11 districts, ~180 streets) will need PostgreSQL. The parts of
the store that a hub must replace — the case event store, the audit chain, the change log and the
hub's records of what streets sent — are reached through these four small protocols, so the later
adapter implements them and passes the same contract test (tests/store/test_repository_contract.py)
instead of the domain being rewritten. ``repos_for(db)`` is the one place an implementation is chosen.

Every method runs inside the caller's write transaction (``Store.write``): a repository never commits,
so "a domain write, its audit entry and its change-log row commit together" (§4) still holds.
Dialect-specific SQL (``sqlite_sequence``, ``INSERT OR IGNORE``, ``ON CONFLICT … DO UPDATE``) lives in
the implementation, never at the call site.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from server.domain.calendar import WorkCalendar
from server.domain.engine import CaseKind, CaseView, Draft, Event

__all__ = [
    "AuditLog", "ChainStatus", "ChangeLog", "ChangeRow", "EventStore", "HeldEntries", "HubRecord", "HubRecords",
    "HubRow", "Repositories", "Transition",
]


# --- event store -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """What appending one transition did: the new view and event, or the conflict record it became."""

    view: CaseView | None
    event: Event | None
    conflict_id: str | None = None
    conflict_reason: str | None = None


class EventStore(Protocol):
    """Cases as an append-only event log with a folded cache row (DESIGN.md §2, §4)."""

    def create_case(self, kind: CaseKind, draft: Draft, *, org_path: str, node_id: str, calendar: WorkCalendar,
                    case_id: str | None = None) -> tuple[CaseView, str]:
        """Create a case with its first event; returns (view, human case number)."""

    def transition(self, case_id: str, draft: Draft, *, node_id: str, calendar: WorkCalendar) -> Transition:
        """Decide and append one event; a stale ``base_version`` becomes a conflict record. The same
        event id again: the same act gets its original result, another act RuleViolation ``id_conflict``."""

    def view(self, case_id: str) -> tuple[CaseKind, CaseView]:
        """The case folded from its events (RuleViolation ``not_found`` when there is none)."""

    def events(self, case_id: str) -> list[Event]:
        """The case's events in ``seq`` order."""

    def case(self, case_id: str) -> dict[str, Any] | None:
        """The cache row (state, version, data, clocks, due_at, …), or None."""

    def children(self, case_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        """Child cases (a consultation's comments, a request's third-party opinions), oldest first."""


# --- audit chain -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainStatus:
    ok: bool
    entries: int
    head_hash: str
    broken_at: int | None = None
    reason: str = ""


class HeldEntries(Protocol):
    entries: list[dict[str, Any]]


class AuditLog(Protocol):
    """The hash-chained, append-only audit log (DESIGN.md §5)."""

    def append(self, *, actor: str, role: str, action: str, object_type: str, object_id: str, org_path: str = "",
               before: Any = None, after: Any = None, legal_basis: str = "", on_behalf_of: str | None = None,
               device_id: str | None = None, detail: dict[str, Any] | None = None) -> int:
        """Append one entry linked to the head; returns its seq (0 while entries are held)."""

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last entry; (0, GENESIS) for an empty log. The hub counter-signs this."""

    def hash_at(self, seq: int) -> str | None:
        """The hash of entry ``seq``, to check a counter-signed head against the chain."""

    def verify(self) -> ChainStatus:
        """Walk the chain from the start; the first edited or missing entry breaks it."""

    def hold(self) -> AbstractContextManager[HeldEntries]:
        """Entries appended inside are held back (undone with the caller's savepoints), not chained."""

    def append_envelope(self, effects: list[dict[str, Any]], envelope: dict[str, Any], *, actor: str, role: str,
                        object_id: str, org_path: str, device_id: str | None, after: Any) -> int:
        """The ONE entry of an accepted envelope, naming the envelope and the held ``effects``."""


# --- change log --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeRow:
    node_seq: int
    entity: str
    entity_id: str
    op: str
    org_path: str
    at: str


class ChangeLog(Protocol):
    """What sync carries: a server sequence per change, never a clock (DESIGN.md §6 rule 2)."""

    def record(self, entity: str, entity_id: str, org_path: str = "", op: str = "put") -> int:
        """Append one change; returns its node_seq (strictly greater than any seq handed out before)."""

    def high_seq(self) -> int:
        """The highest node_seq written (0 when empty)."""

    def after(self, node_seq: int, limit: int) -> list[ChangeRow]:
        """Changes after ``node_seq``, oldest first, at most ``limit``."""

    def raise_floor(self, node_seq: int) -> None:
        """Never hand out a seq at or below ``node_seq`` again (a node restored from an older backup)."""


# --- the hub's records of what streets sent ------------------------------------------------------------


@dataclass(frozen=True)
class HubRow:
    """One up-synced change-log row, kept once per (node_id, node_seq) as evidence."""

    node_id: str
    node_seq: int
    epoch: str
    batch_id: str
    entity: str
    entity_id: str
    op: str
    kind: str
    org_path: str
    at: str
    data: str | None
    sealed: str | None
    row_sha256: str
    received_at: str


@dataclass(frozen=True)
class HubRecord:
    """The hub's current copy of a record: the owning node's latest ``node_seq`` wins."""

    entity: str
    entity_id: str
    node_id: str
    op: str
    org_path: str
    data: str | None
    sealed: str | None
    node_seq: int
    updated_at: str


class HubRecords(Protocol):
    """The district (later city) hub's side of leg B (sync.md §4.3)."""

    def rows_between(self, node_id: str, after_seq: int, to_seq: int) -> dict[int, tuple[str, str, str]]:
        """Stored rows of ``node_id`` with after_seq < seq <= to_seq: seq -> (row_sha256, entity, entity_id)."""

    def add_rows(self, rows: Sequence[HubRow]) -> None:
        """Keep each row; a (node_id, node_seq) already stored keeps its first copy."""

    def add_batch(self, batch_id: str, node_id: str, session_id: str, after_seq: int, to_seq: int, rows: int,
                  received_at: str, via: str) -> None:
        """Note a received batch once (a resent batch_id changes nothing)."""

    def set_acked(self, node_id: str, acked_through_seq: int, at: str) -> None:
        """The node's contiguous acknowledged seq and last contact."""

    def acked_through(self, node_id: str) -> int | None:
        """The node's acknowledged seq (None for a node the hub does not know)."""

    def owners_elsewhere(self, entity: str, entity_ids: Iterable[str], node_id: str) -> dict[str, str]:
        """entity_id -> owning node for those ids already held for ``entity`` by a node other than ``node_id``."""

    def upsert(self, records: Sequence[HubRecord]) -> None:
        """Write the current copies; an existing record changes only for its own node and a seq not older."""

    def record(self, entity: str, entity_id: str) -> HubRecord | None:
        """The hub's current copy, or None."""

    def add_conflict(self, kind: str, node_id: str | None, entity: str | None, entity_id: str | None,
                     node_seq: int | None, detail: dict[str, Any], now: datetime, conflict_id: str) -> None:
        """Keep a conflict record; the same ``conflict_id`` again changes nothing (idempotent)."""

    def conflict(self, conflict_id: str) -> dict[str, Any] | None:
        """A conflict record as kept: id, kind, node_id, entity, entity_id, node_seq, detail (parsed)."""


@dataclass(frozen=True)
class Repositories:
    """The four repositories over one transaction."""

    events: EventStore
    audit: AuditLog
    changes: ChangeLog
    hub: HubRecords
