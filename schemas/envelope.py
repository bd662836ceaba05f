"""The sync envelope and what the outbox endpoint answers (sync.md §4.1, §4.2; DESIGN §6).

These models check *shape*. They are applied only after ``sync.envelopes.verify_envelope`` has
checked the signature on the raw JSON object: parsing may normalise values (a timestamp becomes a
``datetime``), and a signature is over the bytes the device signed, not over our reading of them.
For the same reason ``OutboxRequest`` carries envelopes as raw objects: each is verified and parsed
on its own, so one bad item never fails the batch.

An encrypted payload is the object ``{"sealed": <sealed box>}``: a top-level payload key ``sealed``
is reserved, and any payload that has it must be exactly a well-formed sealed box.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    Tag,
    model_validator,
)

__all__ = [
    "KNOWN_ALGS",
    "KNOWN_SEAL_ALGS",
    "OUTBOX_MAX_ENVELOPES",
    "Attachment",
    "EncryptedPayload",
    "FieldError",
    "OutboxItemResult",
    "OutboxItemStatus",
    "OutboxRequest",
    "OutboxResponse",
    "Receipt",
    "SealedBox",
    "Signature",
    "SignatureAlg",
    "SealAlg",
    "SubmissionEnvelope",
]

SignatureAlg = Literal["Ed25519", "ECDSA-P256-SHA256"]
SealAlg = Literal["X25519-HKDF-SHA256-A256GCM"]
KNOWN_ALGS: tuple[str, ...] = get_args(SignatureAlg)
KNOWN_SEAL_ALGS: tuple[str, ...] = get_args(SealAlg)
OUTBOX_MAX_ENVELOPES = 100  # sync.md §4.2: ≤ 100 envelopes per batch

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
UUID7_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
B64URL_PATTERN = r"^[A-Za-z0-9_-]+$"
KEY_ID_PATTERN = r"^[0-9a-f]{16}$"
IDENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
ORG_PATH_PATTERN = r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"
MIME_PATTERN = r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_HLC = re.compile(r"^(\d{1,16})-(\d{1,10})-(.+)$")


def _rfc3339(value: Any) -> Any:
    # pydantic alone would also take unix numbers and "2026-05-01 09:30"; the protocol says RFC 3339.
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.match(value)):
        return value
    raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2026-05-01T09:30:00+08:00")


Uuid = Annotated[str, Field(pattern=UUID_PATTERN)]
Uuid7 = Annotated[str, Field(pattern=UUID7_PATTERN)]
Sha256Hex = Annotated[str, Field(pattern=SHA256_PATTERN)]
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=IDENT_PATTERN)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Signature(_Input):
    alg: SignatureAlg
    key_id: str = Field(pattern=KEY_ID_PATTERN, description="first 16 hex of sha256(raw public key)")
    value: str = Field(pattern=B64URL_PATTERN, max_length=512, description="base64url, no padding")


class SealedBox(_Input):
    """Output of ``server.domain.crypto.seal``: X25519 ephemeral-static ECDH, HKDF-SHA256, AES-256-GCM."""

    alg: SealAlg
    kid: str = Field(pattern=KEY_ID_PATTERN, description="key id of the recipient's X25519 key")
    epk: str = Field(pattern=B64URL_PATTERN, description="ephemeral X25519 public key, base64url")
    nonce: str = Field(pattern=B64URL_PATTERN, description="96-bit GCM nonce, base64url")
    ct: str = Field(pattern=B64URL_PATTERN, description="ciphertext with the GCM tag appended, base64url")


class EncryptedPayload(_Input):
    """A payload sealed to the district's key; the envelope's routing fields stay in clear."""

    sealed: SealedBox


def _payload_kind(value: Any) -> str:
    if isinstance(value, EncryptedPayload) or (isinstance(value, dict) and "sealed" in value):
        return "sealed"
    return "clear"


Payload = Annotated[
    Annotated[EncryptedPayload, Tag("sealed")] | Annotated[dict[str, Any], Tag("clear")],
    Discriminator(_payload_kind),
]


class Attachment(_Input):
    name: str = Field(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$")
    sha256: Sha256Hex
    size: StrictInt = Field(ge=0)
    mime: str = Field(max_length=127, pattern=MIME_PATTERN)


class SubmissionEnvelope(_Input):
    """One submission from a tablet (leg A) or a street node (leg B); the signed unit of sync."""

    submission_id: Uuid7
    root_id: Uuid = Field(description="= submission_id for the first version")
    supersedes: Uuid | None = Field(default=None, description="the version this one replaces")
    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    form_id: Identifier
    form_version: str = Field(min_length=1, max_length=64, pattern=IDENT_PATTERN)
    schema_hash: Sha256Hex | None = None
    org_path: str = Field(max_length=512, pattern=ORG_PATH_PATTERN, description="district/street/…")
    device_id: Identifier
    device_seq: StrictInt = Field(ge=1, description="gapless per-device counter")
    user_id: Identifier
    created_at_device: Timestamp
    device_clock_offset_ms: StrictInt | None = None
    hlc: str | None = Field(default=None, max_length=200, description="<physical_ms>-<counter>-<device_id>")
    payload: Payload
    attachments: list[Attachment] = Field(default_factory=list, max_length=100)
    payload_sha256: Sha256Hex = Field(description="sha256 of the canonical JSON of payload, as sent")
    sig: Signature

    @model_validator(mode="after")
    def _versions_and_ordering_hints(self) -> SubmissionEnvelope:
        if self.supersedes is None and self.root_id != self.submission_id:
            raise ValueError("root_id must equal submission_id for a first version (supersedes is null)")
        if self.supersedes is not None and self.supersedes == self.submission_id:
            raise ValueError("a submission cannot supersede itself")
        if self.supersedes is not None and self.root_id == self.submission_id:
            raise ValueError("a later version keeps the root_id of the first version")
        if self.hlc is not None:
            match = _HLC.match(self.hlc)
            if match is None or match.group(3) != self.device_id:
                raise ValueError("hlc must be <physical_ms>-<counter>-<device_id> of this device")
        names = [a.name for a in self.attachments]
        if len(names) != len(set(names)):
            raise ValueError("attachment names must be unique within a submission")
        return self


class Receipt(_Input):
    """The node's signed acknowledgement; a tablet marks an item ACKED only after storing one."""

    submission_id: Uuid7
    node_id: Identifier
    node_seq: StrictInt = Field(ge=1)
    received_at: Timestamp
    payload_sha256: Sha256Hex
    sig: Signature


class FieldError(BaseModel):
    """As ``schemas.common.FieldError``: ``field`` and ``message``, and whatever a rule adds (``type``, ``rule``)."""

    model_config = ConfigDict(extra="allow")

    field: str
    message: str
    type: str | None = None
    rule: str | None = None


OutboxItemStatus = Literal[
    "created", "duplicate", "id_conflict", "stale_version", "invalid", "forbidden", "awaiting_blobs"
]


class OutboxItemResult(_Input):
    # Not pattern-checked: an invalid envelope's id is echoed back as sent, so the tablet can match it.
    submission_id: str = Field(max_length=200)
    status: OutboxItemStatus
    receipt: Receipt | None = None
    current_head: Uuid | None = Field(default=None, description="for stale_version: the head to rebase on")
    conflict_id: str | None = Field(default=None, description="for stale_version of a case event: the conflict record")
    errors: list[FieldError] = Field(default_factory=list)
    record: dict[str, Any] | None = Field(
        default=None, description="what the intake handler created, e.g. case_id, number, query_code"
    )


class OutboxRequest(_Input):
    envelopes: list[dict[str, Any]] = Field(min_length=1, max_length=OUTBOX_MAX_ENVELOPES)


class ClockMeasurement(_Input):
    offset_ms: StrictInt | None = Field(description="node time minus X-Device-Time, when the header was sent")
    suspect: bool = Field(description="the device's clock is off by more than 5 minutes (sync.md §4.5)")


class OutboxResponse(_Input):
    ok: bool = True
    results: list[OutboxItemResult]
    node_id: Identifier
    server_time: Timestamp = Field(description="for the device's clock-offset measurement (sync.md §4.5)")
    write_checkpoint: StrictInt | None = Field(
        default=None, ge=0, description="do not apply pulled rows over pending ones until high_seq ≥ this"
    )
    clock: ClockMeasurement
