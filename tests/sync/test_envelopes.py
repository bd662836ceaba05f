from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from pydantic import ValidationError

from schemas.envelope import (
    OutboxItemResult,
    OutboxRequest,
    OutboxResponse,
    Receipt,
    SubmissionEnvelope,
)
from server.domain.canonical import canonical_json, sha256_hex
from server.domain.crypto import (
    EncryptionKeyPair,
    SigningKey,
    b64url_decode,
    b64url_encode,
    key_id_of,
    verify_signature,
)
from server.domain.ids import CHINA_TZ, uuid7
from sync.envelopes import (
    EnvelopeError,
    make_receipt,
    open_payload,
    payload_hash,
    seal_payload,
    sign_envelope,
    signing_bytes,
    verify_envelope,
    verify_receipt,
)

DEVICE = "tab-tianhe-shipai-07"


def envelope_fields(**overrides: Any) -> dict[str, Any]:
    sid = uuid7()
    fields: dict[str, Any] = {
        "submission_id": sid,
        "root_id": sid,
        "supersedes": None,
        "kind": "incident_report",
        "form_id": "grid_incident",
        "form_version": "2026.1",
        "schema_hash": "a" * 64,
        "org_path": "tianhe/shipai/gangding/g07",
        "device_id": DEVICE,
        "device_seq": 42,
        "user_id": "u-wang-wei",
        "created_at_device": "2026-05-01T09:30:00+08:00",
        "device_clock_offset_ms": -1200,
        "hlc": f"1777599000000-0-{DEVICE}",
        "payload": {
            "category": "市容环境",
            "description": "井盖缺失",
            "location": {"lat": 23.13, "lng": 113.33},
        },
        "attachments": [{"name": "photo-1.jpg", "sha256": "b" * 64, "size": 183_204, "mime": "image/jpeg"}],
    }
    fields.update(overrides)
    return fields


@pytest.fixture
def device_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def signed(device_key: SigningKey) -> dict[str, Any]:
    return sign_envelope(envelope_fields(), device_key)


def wire(env: dict[str, Any]) -> dict[str, Any]:
    """What the node sees: the envelope after a JSON round trip."""
    result: dict[str, Any] = json.loads(json.dumps(env, ensure_ascii=False))
    return result


def assert_rejected(env: Any, public_raw: bytes, code: str, **kwargs: Any) -> EnvelopeError:
    with pytest.raises(EnvelopeError) as info:
        verify_envelope(env, public_raw, **kwargs)
    assert info.value.code == code, info.value
    return info.value


# --- hashing and signing bytes --------------------------------------------------------------------------


def test_payload_hash_is_sha256_of_canonical_json() -> None:
    payload = {"b": 1, "a": "街道"}
    assert payload_hash(payload) == sha256_hex('{"a":"街道","b":1}'.encode())
    assert payload_hash({"a": "街道", "b": 1}) == payload_hash(payload)


def test_signing_bytes_are_canonical_json_without_sig(signed: dict[str, Any]) -> None:
    body = {k: v for k, v in signed.items() if k != "sig"}
    assert signing_bytes(signed) == canonical_json(body)
    assert b'"sig"' not in signing_bytes(signed)


def test_signing_bytes_refuse_values_json_cannot_carry() -> None:
    for bad in ({"x": float("nan")}, {"x": float("inf")}, {"x": {1, 2}}, {"x": b"bytes"}, {1: "int key"}):
        with pytest.raises(EnvelopeError) as info:
            signing_bytes({"payload": bad})
        assert info.value.code == "malformed"


def test_deeply_nested_payloads_are_malformed_not_a_crash() -> None:
    payload: dict[str, Any] = {}
    inner = payload
    for _ in range(200):
        inner["x"] = {}
        inner = inner["x"]
    with pytest.raises(EnvelopeError):
        signing_bytes({"payload": payload})


# --- sign / verify ----------------------------------------------------------------------------------------


def test_sign_and_verify_round_trip_over_the_wire(device_key: SigningKey, signed: dict[str, Any]) -> None:
    assert signed["payload_sha256"] == payload_hash(signed["payload"])
    assert signed["sig"]["alg"] == "Ed25519"
    assert signed["sig"]["key_id"] == device_key.key_id
    verify_envelope(signed, device_key.public_raw)
    verify_envelope(wire(signed), device_key.public_raw, expected_alg="Ed25519")
    SubmissionEnvelope.model_validate(wire(signed))


def test_sign_envelope_converts_datetimes_to_rfc3339(device_key: SigningKey) -> None:
    at = datetime(2026, 5, 1, 9, 30, tzinfo=CHINA_TZ)
    env = sign_envelope(envelope_fields(created_at_device=at), device_key)
    assert env["created_at_device"] == "2026-05-01T09:30:00+08:00"
    verify_envelope(wire(env), device_key.public_raw)
    with pytest.raises(EnvelopeError):
        sign_envelope(envelope_fields(created_at_device=datetime(2026, 5, 1, 9, 30)), device_key)


def test_sign_envelope_refuses_a_wrong_payload_sha256(device_key: SigningKey) -> None:
    with pytest.raises(ValueError):
        sign_envelope(envelope_fields(payload_sha256="0" * 64), device_key)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every leaf of a JSON value, as a key path."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _paths(v, (*prefix, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _paths(v, (*prefix, i))]
    return [prefix]


def _mutate(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value[:-1] + ("0" if value[-1:] != "0" else "1") if value else "x"
    return "changed"


def test_changing_any_field_fails_verification(device_key: SigningKey, signed: dict[str, Any]) -> None:
    for path in _paths(signed):
        if path[:2] in (("sig", "alg"),):
            continue  # covered by the unknown-algorithm test
        env = copy.deepcopy(signed)
        target = env
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = _mutate(target[path[-1]])
        with pytest.raises(EnvelopeError):
            verify_envelope(env, device_key.public_raw)


def test_a_flipped_byte_anywhere_in_the_signed_bytes_fails(
    device_key: SigningKey, signed: dict[str, Any]
) -> None:
    body = signing_bytes(signed)
    sig = b64url_decode(signed["sig"]["value"])
    for index in range(len(body)):
        tampered = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
        assert not verify_signature(device_key.public_raw, sig, tampered)
    for index in range(len(sig)):
        bad = sig[:index] + bytes([sig[index] ^ 0x80]) + sig[index + 1 :]
        env = {**signed, "sig": {**signed["sig"], "value": b64url_encode(bad)}}
        assert_rejected(env, device_key.public_raw, "bad_signature")


def test_adding_or_removing_a_field_fails(device_key: SigningKey, signed: dict[str, Any]) -> None:
    assert_rejected({**signed, "note": "x"}, device_key.public_raw, "bad_signature")
    assert_rejected({k: v for k, v in signed.items() if k != "hlc"}, device_key.public_raw, "bad_signature")


def test_payload_hash_mismatch_is_reported_as_such(device_key: SigningKey, signed: dict[str, Any]) -> None:
    env = {**signed, "payload": {**signed["payload"], "description": "已修复"}}
    error = assert_rejected(env, device_key.public_raw, "payload_hash_mismatch")
    assert error.field == "payload_sha256"
    assert error.message and error.message_en
    assert error.to_field_error() == {"field": "payload_sha256", "message": error.message}


@pytest.mark.parametrize("alg", ["none", "HS256", "SM2-SM3", "ed25519", ""])
def test_unknown_algorithm_is_refused(device_key: SigningKey, signed: dict[str, Any], alg: str) -> None:
    env = {**signed, "sig": {**signed["sig"], "alg": alg}}
    error = assert_rejected(env, device_key.public_raw, "unknown_alg")
    assert error.field == "sig.alg"


def test_unknown_algorithm_is_refused_before_anything_else(
    device_key: SigningKey, signed: dict[str, Any]
) -> None:
    env = {**signed, "payload": {"x": 1}, "sig": {**signed["sig"], "alg": "none"}}
    assert_rejected(env, device_key.public_raw, "unknown_alg")


def test_signature_by_another_key_fails(signed: dict[str, Any]) -> None:
    other = SigningKey.generate()
    assert_rejected(signed, other.public_raw, "key_mismatch")
    # even with the key id rewritten to the verifier's, the signature itself fails
    env = {**signed, "sig": {**signed["sig"], "key_id": other.key_id}}
    assert_rejected(env, other.public_raw, "bad_signature")


def test_expected_algorithm_must_match(device_key: SigningKey, signed: dict[str, Any]) -> None:
    assert_rejected(signed, device_key.public_raw, "alg_mismatch", expected_alg="ECDSA-P256-SHA256")


@pytest.mark.parametrize(
    "sig",
    [
        None,
        "abc",
        {"alg": "Ed25519"},
        {"alg": "Ed25519", "key_id": "x", "value": 1},
        {"alg": "Ed25519", "key_id": "x"},
    ],
)
def test_malformed_sig_is_reported(device_key: SigningKey, signed: dict[str, Any], sig: Any) -> None:
    env = {**signed, "sig": sig}
    assert_rejected(env, device_key.public_raw, "malformed")


def test_non_objects_and_missing_hash_are_malformed(device_key: SigningKey, signed: dict[str, Any]) -> None:
    assert_rejected([signed], device_key.public_raw, "malformed")
    assert_rejected(
        {k: v for k, v in signed.items() if k != "payload_sha256"}, device_key.public_raw, "malformed"
    )
    assert_rejected({k: v for k, v in signed.items() if k != "payload"}, device_key.public_raw, "malformed")


def test_non_canonical_signature_encoding_is_refused(device_key: SigningKey, signed: dict[str, Any]) -> None:
    value = signed["sig"]["value"]
    padded = {**signed, "sig": {**signed["sig"], "value": value + "=="}}
    assert_rejected(padded, device_key.public_raw, "bad_signature")


def test_ecdsa_p256_envelope_from_a_tablet_without_ed25519() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public_raw = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    fields = envelope_fields()
    fields["payload_sha256"] = payload_hash(fields["payload"])
    r, s = decode_dss_signature(private.sign(signing_bytes(fields), ec.ECDSA(hashes.SHA256())))
    env = {
        **fields,
        "sig": {
            "alg": "ECDSA-P256-SHA256",
            "key_id": key_id_of(public_raw),
            "value": b64url_encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")),
        },
    }
    verify_envelope(wire(env), public_raw, expected_alg="ECDSA-P256-SHA256")
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    verify_envelope(wire(env), spki)  # the same key enrolled in SPKI form has the same key id
    assert_rejected({**env, "device_seq": 43}, public_raw, "bad_signature")


# --- sealed payloads ---------------------------------------------------------------------------------------


def test_sealed_payload_is_verified_then_opened(device_key: SigningKey) -> None:
    district = EncryptionKeyPair.generate()
    clear = {"name": "张三", "id_card": "44010619900101123X", "phone": "13812345678"}
    env = sign_envelope(seal_payload(envelope_fields(payload=clear), district.public_raw), device_key)
    assert set(env["payload"]) == {"sealed"}
    assert "张三" not in json.dumps(env, ensure_ascii=False)
    assert env["payload_sha256"] == payload_hash(env["payload"])  # over the sealed form
    verify_envelope(wire(env), device_key.public_raw)  # no district key needed to verify
    assert open_payload(wire(env), device_key.public_raw, district) == clear
    model = SubmissionEnvelope.model_validate(wire(env))
    assert not isinstance(model.payload, dict)
    assert model.payload.sealed.kid == district.key_id


def test_open_payload_refuses_before_decrypting_when_the_signature_is_bad(device_key: SigningKey) -> None:
    district = EncryptionKeyPair.generate()
    env = sign_envelope(seal_payload(envelope_fields(payload={"a": 1}), district.public_raw), device_key)
    with pytest.raises(EnvelopeError) as info:
        open_payload({**env, "device_seq": 1}, device_key.public_raw, district)
    assert info.value.code == "bad_signature"


def test_a_sealed_payload_moved_into_another_envelope_does_not_open(device_key: SigningKey) -> None:
    district = EncryptionKeyPair.generate()
    original = seal_payload(envelope_fields(payload={"a": 1}), district.public_raw)
    moved = sign_envelope(envelope_fields(payload=original["payload"]), device_key)
    with pytest.raises(EnvelopeError) as info:
        open_payload(moved, device_key.public_raw, district)
    assert info.value.code == "decrypt_failed"


def test_open_payload_for_the_wrong_recipient_fails(device_key: SigningKey) -> None:
    env = sign_envelope(
        seal_payload(envelope_fields(payload={"a": 1}), EncryptionKeyPair.generate().public_raw), device_key
    )
    with pytest.raises(EnvelopeError) as info:
        open_payload(env, device_key.public_raw, EncryptionKeyPair.generate())
    assert info.value.code == "decrypt_failed"


def test_open_payload_passes_a_clear_payload_through(device_key: SigningKey, signed: dict[str, Any]) -> None:
    assert open_payload(signed, device_key.public_raw, EncryptionKeyPair.generate()) == signed["payload"]


# --- receipts -----------------------------------------------------------------------------------------------


def test_receipt_round_trip(signed: dict[str, Any]) -> None:
    node = SigningKey.generate()
    receipt = make_receipt(
        submission_id=signed["submission_id"],
        node_id="node-shipai",
        node_seq=1001,
        received_at=datetime(2026, 5, 1, 9, 31, 2, tzinfo=CHINA_TZ),
        payload_sha256=signed["payload_sha256"],
        key=node,
    )
    assert receipt["received_at"] == "2026-05-01T09:31:02+08:00"
    verify_receipt(wire(receipt), node.public_raw)
    verify_receipt(
        receipt,
        node.public_raw,
        submission_id=signed["submission_id"],
        payload_sha256=signed["payload_sha256"],
    )
    parsed = Receipt.model_validate(wire(receipt))
    assert parsed.node_seq == 1001
    OutboxItemResult.model_validate(
        {"submission_id": signed["submission_id"], "status": "created", "receipt": receipt}
    )


def test_receipt_tampering_and_mismatch_are_detected(signed: dict[str, Any]) -> None:
    node = SigningKey.generate()
    receipt = make_receipt(
        submission_id=signed["submission_id"],
        node_id="node-shipai",
        node_seq=7,
        received_at=datetime(2026, 5, 1, 1, 0, tzinfo=UTC),
        payload_sha256=signed["payload_sha256"],
        key=node,
    )
    for field, value in (("node_seq", 8), ("received_at", "2026-05-01T01:00:01+00:00"), ("node_id", "x")):
        with pytest.raises(EnvelopeError) as info:
            verify_receipt({**receipt, field: value}, node.public_raw)
        assert info.value.code == "bad_signature"
    with pytest.raises(EnvelopeError) as info:
        verify_receipt(receipt, SigningKey.generate().public_raw)
    assert info.value.code == "key_mismatch"
    with pytest.raises(EnvelopeError) as info:
        verify_receipt(receipt, node.public_raw, payload_sha256="0" * 64)
    assert info.value.code == "receipt_mismatch"
    with pytest.raises(EnvelopeError) as info:
        verify_receipt({**receipt, "extra": 1}, node.public_raw)
    assert info.value.code == "malformed"


def test_an_envelope_signed_by_the_node_is_not_a_receipt(signed: dict[str, Any]) -> None:
    node = SigningKey.generate()
    with pytest.raises(EnvelopeError):
        verify_receipt(sign_envelope(envelope_fields(), node), node.public_raw)


def test_make_receipt_needs_an_aware_time() -> None:
    with pytest.raises(EnvelopeError):
        make_receipt(
            submission_id=uuid7(),
            node_id="n",
            node_seq=1,
            received_at=datetime(2026, 5, 1, 9, 0),
            payload_sha256="a" * 64,
            key=SigningKey.generate(),
        )


# --- the pydantic models -----------------------------------------------------------------------------------


def parse(env: dict[str, Any]) -> SubmissionEnvelope:
    return SubmissionEnvelope.model_validate(env)


def test_envelope_model_parses_a_signed_envelope(signed: dict[str, Any]) -> None:
    model = parse(wire(signed))
    assert model.device_seq == 42
    assert model.created_at_device.utcoffset() == timedelta(hours=8)
    assert model.attachments[0].size == 183_204
    assert isinstance(model.payload, dict)


def test_envelope_model_rejects_unknown_fields(signed: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="extra"):
        parse({**signed, "priority": "high"})
    with pytest.raises(ValidationError):
        parse({**signed, "sig": {**signed["sig"], "extra": 1}})
    attachment = {**signed["attachments"][0], "exif": {}}
    with pytest.raises(ValidationError):
        parse({**signed, "attachments": [attachment]})


@pytest.mark.parametrize("bad", ["B" * 64, "b" * 63, "b" * 65, "g" * 64, "", " " + "b" * 63])
def test_envelope_model_rejects_a_bad_sha256(signed: dict[str, Any], bad: str) -> None:
    with pytest.raises(ValidationError):
        parse({**signed, "payload_sha256": bad})
    attachment = {**signed["attachments"][0], "sha256": bad}
    with pytest.raises(ValidationError):
        parse({**signed, "attachments": [attachment]})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("device_seq", 0),
        ("device_seq", "42"),
        ("device_seq", True),
        ("submission_id", "not-a-uuid"),
        ("submission_id", "0190D6F0-0000-7000-8000-000000000001"),  # upper case: a second spelling
        ("submission_id", "0190d6f0-0000-4000-8000-000000000001"),  # v4, not a client UUIDv7
        ("created_at_device", "2026-05-01T09:30:00"),  # no offset
        ("created_at_device", "2026-05-01 09:30:00+08:00"),
        ("created_at_device", 1777599000),
        ("org_path", "tianhe//g07"),
        ("org_path", "/tianhe"),
        ("kind", "Incident Report"),
        ("hlc", "1777599000000-0-another-device"),
        ("hlc", "yesterday"),
        ("sig", {"alg": "HS256", "key_id": "0" * 16, "value": "AA"}),
        ("sig", {"alg": "Ed25519", "key_id": "short", "value": "AA"}),
        ("sig", {"alg": "Ed25519", "key_id": "0" * 16, "value": "AA=="}),
        ("payload", ["not", "an", "object"]),
        ("payload", {"sealed": {"alg": "X25519-HKDF-SHA256-A256GCM"}}),
        ("payload", {"sealed": "x", "name": "张三"}),
    ],
)
def test_envelope_model_rejects_bad_values(signed: dict[str, Any], field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        parse({**signed, field: value})


def test_envelope_model_rejects_bad_attachments(signed: dict[str, Any]) -> None:
    good = signed["attachments"][0]
    for bad in ({**good, "size": -1}, {**good, "name": "../etc/passwd"}, {**good, "mime": "JPEG"}):
        with pytest.raises(ValidationError):
            parse({**signed, "attachments": [bad]})
    with pytest.raises(ValidationError):
        parse({**signed, "attachments": [good, good]})


def test_envelope_versions_must_be_consistent(signed: dict[str, Any]) -> None:
    first = signed["submission_id"]
    with pytest.raises(ValidationError, match="root_id"):
        parse({**signed, "root_id": uuid7()})
    second = uuid7()
    parse({**signed, "submission_id": second, "root_id": first, "supersedes": first})
    with pytest.raises(ValidationError):
        parse({**signed, "submission_id": second, "root_id": second, "supersedes": first})
    with pytest.raises(ValidationError):
        parse({**signed, "supersedes": first})


def test_envelope_model_is_frozen(signed: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse(signed).device_seq = 1  # type: ignore[misc]


def test_outbox_request_caps_the_batch_and_keeps_items_raw(signed: dict[str, Any]) -> None:
    request = OutboxRequest.model_validate({"envelopes": [signed, {"garbage": True}]})
    assert request.envelopes[1] == {"garbage": True}  # one bad item must not fail the batch
    with pytest.raises(ValidationError):
        OutboxRequest.model_validate({"envelopes": [signed] * 101})
    with pytest.raises(ValidationError):
        OutboxRequest.model_validate({"envelopes": []})
    with pytest.raises(ValidationError):
        OutboxRequest.model_validate({"envelopes": [signed], "device": "x"})


def test_outbox_results_and_response() -> None:
    result = OutboxItemResult.model_validate(
        {
            "submission_id": "garbled id",
            "status": "invalid",
            "errors": [{"field": "sig", "message": "签名无效"}],
        }
    )
    assert result.receipt is None
    with pytest.raises(ValidationError):
        OutboxItemResult.model_validate({"submission_id": "x", "status": "lost"})
    for status in (
        "created",
        "duplicate",
        "id_conflict",
        "stale_version",
        "invalid",
        "forbidden",
        "awaiting_blobs",
    ):
        OutboxItemResult.model_validate({"submission_id": "x", "status": status})
    response = OutboxResponse.model_validate(
        {"results": [result.model_dump()], "node_id": "node-shipai", "server_time": "2026-05-01T09:31:02+08:00",
         "clock": {"offset_ms": None, "suspect": False}}
    )
    assert response.write_checkpoint is None


def test_models_export_json_schema() -> None:
    for model in (SubmissionEnvelope, Receipt, OutboxRequest, OutboxResponse, OutboxItemResult):
        schema = model.model_json_schema()
        assert schema["type"] == "object"
    envelope_schema = SubmissionEnvelope.model_json_schema()
    assert envelope_schema["additionalProperties"] is False
