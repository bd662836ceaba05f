"""Pure pieces of leg B: where a replication resumes, signed wire messages, sealing personal fields."""

from __future__ import annotations

import zlib

import pytest

from server.domain.crypto import EncryptionKeyPair, SigningKey
from sync import records, wire
from sync.checkpoints import common_seq


def log(session: str, seq: int, *history: tuple[str, int]) -> dict[str, object]:
    return {"session_id": session, "source_last_seq": seq,
            "history": [{"session_id": s, "recorded_seq": n} for s, n in history]}


def test_resume_from_the_lower_seq_of_a_shared_session_or_the_newest_common_one_else_from_zero() -> None:
    assert common_seq(log("b", 40, ("b", 40), ("a", 10)), log("b", 35, ("b", 35))) == 35
    # the hub was restored: its latest session is older than the street's
    assert common_seq(log("c", 90, ("c", 90), ("b", 60), ("a", 10)), log("b", 40, ("b", 40), ("a", 10))) == 40
    assert common_seq(log("c", 90, ("c", 90)), log("x", 70, ("x", 70))) == 0
    assert common_seq(None, log("x", 70)) == 0


def test_wire_messages_verify_before_anything_is_decompressed() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    for codec in wire.CODECS:
        body, headers = wire.sign_message(key, "n1", "up_batch", {"rows": [1, "二"]}, codec)
        assert wire.open_message(body, headers, key.public_raw, "up_batch") == {"rows": [1, "二"]}
        with pytest.raises(wire.BadSignature):
            wire.open_message(body, headers, other.public_raw, "up_batch")
        with pytest.raises(wire.BadSignature):
            wire.open_message(body, {**headers, "X-Streetnode-Codec": "identity" if codec != "identity" else "gzip"},
                              key.public_raw, "up_batch")
    bomb = zlib.compress(b"0" * (wire.MAX_DECODED_BYTES + 10), 9, wbits=31)
    with pytest.raises(wire.BadBody):
        wire.decode_body(bomb, "gzip")


def test_personal_fields_at_any_depth_are_split_out_and_sealed_per_record() -> None:
    content = {"id": "c1", "state": "submitted", "data": {"title": "低保", "applicant_name": "张三",
                                                         "contact": {"phone": "13800001234"}}, "phone_enc": "v1.x"}
    clear, personal = records.split_personal(content)
    assert clear == {"id": "c1", "state": "submitted", "data": {"title": "低保", "contact": {}}}
    assert personal == {"data.applicant_name": "张三", "data.contact.phone": "13800001234", "phone_enc": "v1.x"}
    assert records.merge_personal(clear, personal) == content
    district = EncryptionKeyPair.generate()
    sealer = records.BatchSealer(district.public_raw)
    a = records.seal_personal(personal, sealer, "n1", "case", "c1")
    b = records.seal_personal(personal, sealer, "n1", "case", "c2")
    assert a["epk"] == b["epk"] and a["ct"] != b["ct"]  # one exchange per batch, a key per record
    assert records.open_personal(a, district, "n1", "case", "c1") == personal
    with pytest.raises(Exception):  # noqa: B017 - bound to its record
        records.open_personal(a, district, "n1", "case", "c2")
    single = records.seal_personal(personal, district.public_raw, "n1", "case", "c1")
    assert records.open_personal(single, district, "n1", "case", "c1") == personal
