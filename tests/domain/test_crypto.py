from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from schemas.envelope import KNOWN_ALGS, KNOWN_SEAL_ALGS
from server.domain import crypto
from server.domain.crypto import (
    ECDSA_P256_SHA256,
    ED25519,
    SEAL_ALG,
    SIGNATURE_ALGS,
    CryptoError,
    DataKey,
    DecryptionError,
    EncryptionKeyPair,
    InvalidKeyError,
    SigningKey,
    UnsupportedAlgorithmError,
    b64url_decode,
    b64url_encode,
    key_id_of,
    load_or_create_key,
    normalize_public_key,
    open_sealed,
    seal,
    verify_signature,
)

MESSAGE = "网格事件：天河路 88 号井盖缺失".encode()


def flipped(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def p256_raw_signature(private: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """What WebCrypto's ECDSA sign() returns: r||s, 32 bytes each (cryptography returns DER)."""
    r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_algorithm_names_agree_with_the_schemas() -> None:
    assert SIGNATURE_ALGS == KNOWN_ALGS
    assert (SEAL_ALG,) == KNOWN_SEAL_ALGS


def test_public_exports_match_all() -> None:
    public = {name for name in vars(crypto) if not name.startswith("_")}
    assert set(crypto.__all__) <= public
    defined_here = {
        name
        for name in public
        if getattr(getattr(crypto, name), "__module__", None) == crypto.__name__
        and name not in crypto.__all__
    }
    assert defined_here == set()


# --- signing keys -----------------------------------------------------------------------------------------


def test_ed25519_sign_and_verify_round_trip() -> None:
    key = SigningKey.generate()
    sig = key.sign(MESSAGE)
    assert len(key.public_raw) == 32
    assert verify_signature(key.public_raw, sig, MESSAGE)
    assert verify_signature(key.public_raw, sig, MESSAGE, alg=ED25519)


def test_key_id_is_first_16_hex_of_sha256_of_raw_public_key() -> None:
    key = SigningKey.generate()
    assert key.key_id == hashlib.sha256(key.public_raw).hexdigest()[:16]
    assert key.key_id == key_id_of(key.public_raw)


@pytest.mark.parametrize("part", ["signature", "data", "public key"])
def test_a_flipped_byte_anywhere_fails_ed25519_verification(part: str) -> None:
    key = SigningKey.generate()
    sig = key.sign(MESSAGE)
    for index in range(len({"signature": sig, "data": MESSAGE, "public key": key.public_raw}[part])):
        args = {"signature": sig, "data": MESSAGE, "public key": key.public_raw}
        args[part] = flipped(args[part], index)
        assert not verify_signature(args["public key"], args["signature"], args["data"])


def test_verification_returns_false_for_malformed_inputs() -> None:
    key = SigningKey.generate()
    sig = key.sign(MESSAGE)
    assert not verify_signature(key.public_raw[:31], sig, MESSAGE)
    assert not verify_signature(key.public_raw, sig[:63], MESSAGE)
    assert not verify_signature(key.public_raw, b"", MESSAGE)
    assert not verify_signature(b"\x04" + b"\x00" * 64, bytes(64), MESSAGE, alg=ECDSA_P256_SHA256)


def test_unknown_algorithm_is_refused_not_treated_as_a_bad_signature() -> None:
    key = SigningKey.generate()
    with pytest.raises(UnsupportedAlgorithmError):
        verify_signature(key.public_raw, key.sign(MESSAGE), MESSAGE, alg="SM2-SM3")
    with pytest.raises(UnsupportedAlgorithmError):
        normalize_public_key(key.public_raw, "HS256")


def test_pem_round_trip_plain_and_with_passphrase() -> None:
    key = SigningKey.generate()
    plain = key.to_pem()
    assert plain.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert SigningKey.from_pem(plain).public_raw == key.public_raw
    locked = key.to_pem("街道办 2026")
    assert locked.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert SigningKey.from_pem(locked, "街道办 2026").public_raw == key.public_raw
    with pytest.raises(InvalidKeyError):
        SigningKey.from_pem(locked, "wrong")
    with pytest.raises(InvalidKeyError):
        SigningKey.from_pem(locked)
    with pytest.raises(InvalidKeyError):
        SigningKey.from_pem(plain, "unexpected")


def test_from_pem_refuses_other_key_types() -> None:
    with pytest.raises(InvalidKeyError):
        SigningKey.from_pem(EncryptionKeyPair.generate().to_pem())
    with pytest.raises(InvalidKeyError):
        EncryptionKeyPair.from_pem(SigningKey.generate().to_pem())
    with pytest.raises(InvalidKeyError):
        SigningKey.from_pem(b"not a pem")


def test_repr_never_shows_key_material() -> None:
    key = SigningKey.generate()
    assert key.key_id in repr(key)
    assert key.to_pem().decode() not in repr(key)
    assert repr(DataKey.generate()) == "DataKey(<secret>)"


def test_load_or_create_key_writes_a_0600_pem_and_reloads_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "node.pem"
    created = load_or_create_key(path)
    assert mode_of(path) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert load_or_create_key(path).public_raw == created.public_raw
    assert [p.name for p in path.parent.iterdir()] == ["node.pem"]  # no temporary files left behind


def test_load_or_create_key_with_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "hub.pem"
    created = load_or_create_key(path, passphrase="s3cret")
    assert b"ENCRYPTED" in path.read_bytes()
    assert load_or_create_key(path, passphrase="s3cret").key_id == created.key_id
    with pytest.raises(InvalidKeyError):
        load_or_create_key(path)


def test_private_files_are_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        crypto.write_private_file(tmp_path / "k", b"secret")
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "k") == 0o600


def test_write_private_file_never_clobbers_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "k"
    crypto.write_private_file(path, b"first")
    with pytest.raises(FileExistsError):
        crypto.write_private_file(path, b"second")
    assert path.read_bytes() == b"first"
    crypto.write_private_file(path, b"second", overwrite=True)
    assert path.read_bytes() == b"second"
    assert mode_of(path) == 0o600


# --- ECDSA P-256 for tablets without WebCrypto Ed25519 --------------------------------------------------


@pytest.mark.parametrize("form", ["uncompressed", "compressed", "spki"])
def test_ecdsa_p256_raw_signatures_verify_with_any_public_key_form(form: str) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key()
    encoded = {
        "uncompressed": public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        ),
        "compressed": public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        ),
        "spki": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }[form]
    sig = p256_raw_signature(private, MESSAGE)
    assert len(sig) == 64
    assert verify_signature(encoded, sig, MESSAGE, alg=ECDSA_P256_SHA256)
    assert not verify_signature(encoded, sig, MESSAGE + b".", alg=ECDSA_P256_SHA256)
    assert not verify_signature(encoded, flipped(sig, 40), MESSAGE, alg=ECDSA_P256_SHA256)
    raw = normalize_public_key(encoded, ECDSA_P256_SHA256)
    assert len(raw) == 65 and raw[0] == 4


def test_ecdsa_der_signatures_are_not_accepted() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    raw_public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    der = private.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    assert not verify_signature(raw_public, der, MESSAGE, alg=ECDSA_P256_SHA256)


def test_an_ed25519_key_cannot_verify_as_ecdsa_or_the_other_way_round() -> None:
    ed = SigningKey.generate()
    assert not verify_signature(ed.public_raw, ed.sign(MESSAGE), MESSAGE, alg=ECDSA_P256_SHA256)
    private = ec.generate_private_key(ec.SECP256R1())
    p256 = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert not verify_signature(p256, p256_raw_signature(private, MESSAGE), MESSAGE, alg=ED25519)


def test_other_curves_are_not_p256() -> None:
    other = ec.generate_private_key(ec.SECP384R1()).public_key()
    spki = other.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(InvalidKeyError):
        normalize_public_key(spki, ECDSA_P256_SHA256)


def test_normalize_ed25519_accepts_raw_and_spki() -> None:
    key = SigningKey.generate()
    spki = (
        serialization.load_pem_private_key(key.to_pem(), None)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert normalize_public_key(spki, ED25519) == key.public_raw
    assert normalize_public_key(key.public_raw, ED25519) == key.public_raw
    with pytest.raises(InvalidKeyError):
        normalize_public_key(b"\x01" * 31, ED25519)


# --- base64url ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 2, 3, 12, 32, 64])
def test_b64url_round_trip_without_padding(size: int) -> None:
    data = os.urandom(size)
    text = b64url_encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64url_decode(text) == data


@pytest.mark.parametrize("text", ["AA==", "A", "AB", "a+b/", "ab cd", "AAE!"])
def test_b64url_decode_rejects_padding_stray_and_non_canonical_text(text: str) -> None:
    # "AB" decodes to one byte with unused bits set: a second spelling of "AA"
    with pytest.raises(ValueError):
        b64url_decode(text)


# --- sealing to the district's key ----------------------------------------------------------------------

AAD = b'{"submission_id":"0190d6f0-0000-7000-8000-000000000001"}'


def test_seal_and_open_round_trip() -> None:
    district = EncryptionKeyPair.generate()
    plaintext = b'{"id_card":"44010619900101123X","phone":"13812345678"}'
    box = seal(plaintext, district.public_raw, AAD)
    assert set(box) == {"alg", "kid", "epk", "nonce", "ct"}
    assert box["alg"] == "X25519-HKDF-SHA256-A256GCM"
    assert box["kid"] == district.key_id
    assert len(b64url_decode(box["epk"])) == 32
    assert len(b64url_decode(box["nonce"])) == 12
    assert len(b64url_decode(box["ct"])) == len(plaintext) + 16
    assert open_sealed(box, district, AAD) == plaintext
    assert open_sealed(box, district.private_key, AAD.decode()) == plaintext


def test_each_seal_uses_a_fresh_key() -> None:
    district = EncryptionKeyPair.generate()
    first, second = (seal(MESSAGE, district.public_raw, AAD) for _ in range(2))
    assert first["epk"] != second["epk"]
    assert first["ct"] != second["ct"]
    assert first["nonce"] != second["nonce"]


@pytest.mark.parametrize("field", ["ct", "nonce", "epk"])
def test_a_tampered_sealed_box_does_not_open(field: str) -> None:
    district = EncryptionKeyPair.generate()
    box = seal(MESSAGE, district.public_raw, AAD)
    raw = b64url_decode(box[field])
    for index in range(len(raw)):
        tampered = {**box, field: b64url_encode(flipped(raw, index))}
        with pytest.raises(DecryptionError):
            open_sealed(tampered, district, AAD)


def test_a_sealed_box_does_not_open_under_another_aad() -> None:
    district = EncryptionKeyPair.generate()
    box = seal(MESSAGE, district.public_raw, AAD)
    with pytest.raises(DecryptionError):
        open_sealed(box, district, AAD + b" ")
    with pytest.raises(DecryptionError):
        open_sealed(box, district, b"")


def test_a_sealed_box_does_not_open_for_another_recipient() -> None:
    district, street = EncryptionKeyPair.generate(), EncryptionKeyPair.generate()
    box = seal(MESSAGE, district.public_raw, AAD)
    with pytest.raises(DecryptionError):
        open_sealed(box, street, AAD)
    with pytest.raises(DecryptionError):  # even when the kid is rewritten to point at the other key
        open_sealed({**box, "kid": street.key_id}, street, AAD)


def test_sealed_box_with_unknown_alg_or_wrong_shape_is_refused() -> None:
    district = EncryptionKeyPair.generate()
    box = seal(MESSAGE, district.public_raw, AAD)
    with pytest.raises(UnsupportedAlgorithmError):
        open_sealed({**box, "alg": "SM2-SM4-GCM"}, district, AAD)
    with pytest.raises(DecryptionError):
        open_sealed({**box, "extra": "x"}, district, AAD)
    with pytest.raises(DecryptionError):
        open_sealed({k: v for k, v in box.items() if k != "nonce"}, district, AAD)
    with pytest.raises(DecryptionError):
        open_sealed({**box, "ct": "!!"}, district, AAD)
    with pytest.raises(DecryptionError):
        open_sealed({**box, "ct": box["ct"][:10]}, district, AAD)


def test_a_low_order_ephemeral_key_is_a_decryption_error() -> None:
    district = EncryptionKeyPair.generate()
    box = seal(MESSAGE, district.public_raw, AAD)
    with pytest.raises(DecryptionError):
        open_sealed({**box, "epk": b64url_encode(bytes(32))}, district, AAD)


def test_every_crypto_error_is_a_crypto_error() -> None:
    for cls in (UnsupportedAlgorithmError, InvalidKeyError, DecryptionError):
        assert issubclass(cls, CryptoError)


def test_seal_refuses_a_malformed_recipient_key() -> None:
    with pytest.raises(InvalidKeyError):
        seal(MESSAGE, b"\x01" * 31, AAD)


def test_encryption_key_pair_save_and_load(tmp_path: Path) -> None:
    district = EncryptionKeyPair.generate()
    path = tmp_path / "district-x25519.pem"
    district.save(path, passphrase="区级密钥口令")
    assert mode_of(path) == 0o600
    loaded = EncryptionKeyPair.load(path, passphrase="区级密钥口令")
    assert loaded.public_raw == district.public_raw
    assert open_sealed(seal(MESSAGE, district.public_raw, AAD), loaded, AAD) == MESSAGE
    with pytest.raises(FileExistsError):
        EncryptionKeyPair.generate().save(path)
    assert EncryptionKeyPair.load(path, passphrase="区级密钥口令").key_id == district.key_id


# --- data at rest -------------------------------------------------------------------------------------------


def test_field_encryption_round_trip_and_token_format() -> None:
    key = DataKey.generate()
    token = key.encrypt_field("44010619900101123X", "residents.id_card:0190d6f0")
    version, nonce, ct = token.split(".")
    assert version == "v1"
    assert len(b64url_decode(nonce)) == 12
    assert len(b64url_decode(ct)) == len("44010619900101123X") + 16
    assert key.decrypt_field(token, "residents.id_card:0190d6f0") == "44010619900101123X"
    assert key.decrypt_field(key.encrypt_field("张三", b"aad"), b"aad") == "张三"
    assert key.encrypt_field("13812345678", "x") != key.encrypt_field("13812345678", "x")


def test_field_token_fails_under_another_row_key_or_after_tampering() -> None:
    key = DataKey.generate()
    token = key.encrypt_field("13812345678", "residents.phone:1")
    with pytest.raises(DecryptionError):
        key.decrypt_field(token, "residents.phone:2")
    with pytest.raises(DecryptionError):
        DataKey.generate().decrypt_field(token, "residents.phone:1")
    version, nonce, ct = token.split(".")
    for bad in (
        f"v2.{nonce}.{ct}",
        f"{version}.{nonce}",
        f"{version}.{nonce}.{ct}.x",
        f"{version}.{b64url_encode(flipped(b64url_decode(nonce), 0))}.{ct}",
        f"{version}.{nonce}.{b64url_encode(flipped(b64url_decode(ct), 3))}",
        f"{version}.{nonce}.{ct[:8]}",
        f"{version}.{nonce}.{ct}=",
    ):
        with pytest.raises(DecryptionError):
            key.decrypt_field(bad, "residents.phone:1")


def test_data_key_must_be_32_bytes() -> None:
    with pytest.raises(InvalidKeyError):
        DataKey(b"short")


def test_data_key_load_or_create_is_0600_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "data.key"
    key = DataKey.load_or_create(path)
    assert mode_of(path) == 0o600
    assert path.stat().st_size == 32
    token = key.encrypt_field("13812345678", "p")
    again = DataKey.load_or_create(path)
    assert again.decrypt_field(token, "p") == "13812345678"
    assert again.blind_index("13812345678", "phone") == key.blind_index("13812345678", "phone")


def test_blind_index_is_stable_and_differs_across_purposes_and_keys() -> None:
    key = DataKey.generate()
    index = key.blind_index("44010619900101123X", "id_card")
    assert len(index) == 64 and int(index, 16) >= 0
    assert key.blind_index("44010619900101123X", "id_card") == index
    assert key.blind_index("44010619900101123x", "id_card") != index  # normalising is the caller's job
    assert key.blind_index("44010619900101123X", "phone") != index
    assert DataKey.generate().blind_index("44010619900101123X", "id_card") != index


def test_blind_index_key_is_not_the_raw_data_key() -> None:
    import hmac

    raw = os.urandom(32)
    key = DataKey(raw)
    plain_hmac = hmac.new(raw, b"13812345678", hashlib.sha256).hexdigest()
    assert key.blind_index("13812345678", "phone") != plain_hmac


@pytest.mark.parametrize("purpose", ["", "ID Card", "身份证", "a" * 65])
def test_blind_index_purpose_must_be_a_simple_name(purpose: str) -> None:
    with pytest.raises(ValueError):
        DataKey.generate().blind_index("x", purpose)
