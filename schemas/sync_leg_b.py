"""Leg B messages: street node ⇄ district hub (sync.md §4.3; DESIGN §6).

Every node → hub message travels as signed raw bytes (``sync.wire``): the hub verifies the node's
Ed25519 signature over the bytes first, then decompresses, then parses with these models. Replies are
signed by the hub the same way and bound to the request by its sha256. Down-packages are also signed
one by one, because they are stored at the street and travel in bundles long after the reply.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

__all__ = [
    "AuditHead",
    "BatchAck",
    "BeginReply",
    "BeginRequest",
    "Checkpoint",
    "Countersignature",
    "DecisionRequest",
    "DownPackage",
    "EnrolNodeRequest",
    "PackageSig",
    "PullReply",
    "PullRequest",
    "UpBatch",
    "UpRow",
]

IDENT = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
STREAM = r"^(all|node:[A-Za-z0-9][A-Za-z0-9_.:-]{0,127})$"
SHA256 = r"^[0-9a-f]{64}$"


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuditHead(_Msg):
    seq: StrictInt = Field(ge=0)
    hash: str = Field(pattern=SHA256)


class Checkpoint(_Msg):
    """CouchDB-style replication log (sync.md §1.1): the same record is kept at both ends."""

    session_id: str = Field(max_length=64)
    source_last_seq: StrictInt = Field(ge=0)
    history: list[dict[str, Any]] = Field(default_factory=list, max_length=50)


class Countersignature(_Msg):
    """The hub's signature over a street's audit-chain head: proof of what the chain was at ``at``."""

    node_id: str = Field(pattern=IDENT)
    hub_id: str = Field(pattern=IDENT)
    audit_seq: StrictInt = Field(ge=0)
    audit_hash: str = Field(pattern=SHA256)
    at: str
    sig: dict[str, str]


class UpRow(_Msg):
    """One change-log row, expanded to the record's content at send time.

    ``kind``: ``record`` (content in ``data``/``sealed``), ``ref`` (an entity this node cannot expand:
    id and op only), ``echo`` (a hub-owned record this node received in a package: never re-authored).
    """

    seq: StrictInt = Field(ge=1)
    entity: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.]*$")
    id: str = Field(min_length=1, max_length=200)
    op: str = Field(min_length=1, max_length=16)
    kind: Literal["record", "ref", "echo"]
    org_path: str = Field(max_length=512)
    at: str = Field(max_length=40)
    data: dict[str, Any] | None = None
    sealed: dict[str, str] | None = None
    sha256: str = Field(pattern=SHA256)


class UpBatch(_Msg):
    type: Literal["up_batch"] = "up_batch"
    node_id: str = Field(pattern=IDENT)
    hub_id: str = Field(pattern=IDENT, description="the audience: a batch for another hub is refused")
    epoch: str = Field(max_length=64)
    replication_id: str = Field(max_length=64)
    session_id: str = Field(max_length=64)
    batch_id: str = Field(max_length=64)
    after_seq: StrictInt = Field(ge=0, description="the batch covers node_seq in (after_seq, to_seq]")
    to_seq: StrictInt = Field(ge=0)
    rows: list[UpRow] = Field(max_length=500)
    created_at: str


class BeginRequest(_Msg):
    type: Literal["up_begin"] = "up_begin"
    node_id: str = Field(pattern=IDENT)
    hub_id: str = Field(pattern=IDENT)
    epoch: str = Field(max_length=64)
    replication_id: str = Field(max_length=64)
    session_id: str = Field(max_length=64)
    checkpoint: Checkpoint | None = None
    high_seq: StrictInt = Field(ge=0)
    audit_head: AuditHead
    down_applied: dict[str, StrictInt] = Field(default_factory=dict)
    created_at: str


class BeginReply(_Msg):
    type: Literal["up_begin_ok"] = "up_begin_ok"
    hub_id: str
    hub_epoch: str
    node_id: str
    acked_through_seq: StrictInt
    checkpoint: Checkpoint | None = None
    countersig: Countersignature
    streams: dict[str, StrictInt]
    server_time: str
    clock_offset_ms: StrictInt
    clock_suspect: bool


class BatchAck(_Msg):
    type: Literal["up_ack"] = "up_ack"
    hub_id: str
    hub_epoch: str
    node_id: str
    batch_id: str
    acked_through_seq: StrictInt
    counts: dict[str, StrictInt]
    server_time: str


class PullRequest(_Msg):
    type: Literal["down_pull"] = "down_pull"
    node_id: str = Field(pattern=IDENT)
    hub_id: str = Field(pattern=IDENT)
    after: dict[str, StrictInt]
    limit: StrictInt = Field(100, ge=1, le=500)


class PackageSig(_Msg):
    alg: str
    key_id: str
    value: str


class DownPackage(_Msg):
    """A hub-signed, ordered package (DHIS2 metadata versions; sync.md §4.3)."""

    package_id: str = Field(max_length=64)
    hub_id: str = Field(pattern=IDENT)
    stream: str = Field(pattern=STREAM)
    seq: StrictInt = Field(ge=1)
    base_seq: StrictInt = Field(ge=0)
    type: Literal["ATOMIC", "BEST_EFFORT"]
    ptype: str = Field(max_length=64)
    created_at: str
    min_node_schema: StrictInt = Field(ge=1)
    items: list[dict[str, Any]]
    sha256: str = Field(pattern=SHA256, description="sha256 of the canonical JSON of items")
    sig: PackageSig


class PullReply(_Msg):
    type: Literal["down_pull_ok"] = "down_pull_ok"
    hub_id: str
    packages: list[dict[str, Any]]
    streams: dict[str, StrictInt]
    has_more: bool


class EnrolNodeRequest(BaseModel):
    """A district admin enrols a street node: its id, street and public keys (read off its enrolment sheet)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    node_id: str = Field(pattern=IDENT)
    org_unit: str = Field(min_length=1, max_length=32, description="the street's org unit code")
    public_key: str = Field(min_length=43, max_length=44, description="Ed25519 public key, base64url")
    enc_public_key: str | None = Field(None, min_length=43, max_length=44,
                                       description="X25519 key for down-bundles, base64url")


class DecisionRequest(BaseModel):
    """The district decides a case a street handed up; the decision travels down as a package."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    transition: str = Field(min_length=1, max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict)
    base_version: int = Field(ge=1, description="the case version the district decided on")
    legal_basis: str = Field("", max_length=200)
