"""Cryptographic primitives of streetnode: identity keys, sealing to the district, data at rest.

Three jobs, three key types (DESIGN §4, §6; sync.md §4.4):

- **Identity** (``SigningKey``, Ed25519): nodes, the hub and enrolled tablets sign envelopes,
  receipts and packages. Tablets whose browser lacks WebCrypto Ed25519 sign with ECDSA P-256
  instead, so verification is selected by an ``alg`` name.
- **Sealing** (``EncryptionKeyPair``, X25519): personal fields travelling up are sealed to the
  district's key, one fresh key per record (ephemeral-static ECDH + HKDF-SHA256 + AES-256-GCM).
- **At rest** (``DataKey``): the node encrypts personal fields in SQLite with AES-256-GCM and finds
  them again through a keyed blind index (HMAC-SHA256), never storing an ID-card number in clear.

A key id is the first 16 hex digits of sha256 over the raw public key (32 bytes for Ed25519 and
X25519, the 65-byte uncompressed point for P-256): short enough to print on an enrolment sheet,
long enough that two keys of one district never collide by accident.

Exceptions::

    CryptoError
    ├── UnsupportedAlgorithmError   an ``alg`` this node does not implement
    ├── InvalidKeyError             malformed key material, wrong key type or wrong passphrase
    └── DecryptionError             a sealed box or field token failed authentication or is malformed
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "ECDSA_P256_SHA256",
    "ED25519",
    "SEAL_ALG",
    "SIGNATURE_ALGS",
    "CryptoError",
    "DataKey",
    "DecryptionError",
    "EncryptionKeyPair",
    "InvalidKeyError",
    "SigningKey",
    "UnsupportedAlgorithmError",
    "b64url_decode",
    "b64url_encode",
    "key_id_of",
    "load_or_create_key",
    "normalize_public_key",
    "open_sealed",
    "seal",
    "verify_signature",
    "write_private_file",
]

ED25519: Final = "Ed25519"
ECDSA_P256_SHA256: Final = "ECDSA-P256-SHA256"
SIGNATURE_ALGS: Final[tuple[str, ...]] = (ED25519, ECDSA_P256_SHA256)
SEAL_ALG: Final = "X25519-HKDF-SHA256-A256GCM"

_NONCE_BYTES = 12  # 96-bit GCM nonce (NIST SP 800-38D)
_TAG_BYTES = 16
_SEALED_BOX_KEYS = frozenset({"alg", "kid", "epk", "nonce", "ct"})
_FIELD_TOKEN_VERSION = "v1"
_PURPOSE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")

Passphrase = str | bytes | None


class CryptoError(Exception):
    """Base of every error raised by this module."""


class UnsupportedAlgorithmError(CryptoError):
    pass


class InvalidKeyError(CryptoError):
    pass


class DecryptionError(CryptoError):
    pass


# --- encoding helpers -------------------------------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 4648 §5), as JWS/JWE and WebCrypto users expect."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict inverse of ``b64url_encode``: rejects padding, stray characters and non-canonical forms.

    Non-canonical encodings (unused trailing bits set) are refused so that one value has exactly one
    spelling; otherwise a signature could be re-encoded into a different string that still verifies.
    """
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
    if b64url_encode(data) != text:
        raise ValueError("non-canonical base64url")
    return data


def key_id_of(public_raw: bytes) -> str:
    """First 16 hex digits of sha256 over the raw public key bytes."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def _passphrase_bytes(passphrase: Passphrase) -> bytes | None:
    if passphrase is None:
        return None
    data = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    if not data:
        raise ValueError("an empty passphrase protects nothing; pass None for an unencrypted key")
    return data


def _pkcs8_pem(key: Ed25519PrivateKey | X25519PrivateKey, passphrase: Passphrase) -> bytes:
    secret = _passphrase_bytes(passphrase)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _load_private_pem(data: bytes, passphrase: Passphrase) -> object:
    try:
        return serialization.load_pem_private_key(data, password=_passphrase_bytes(passphrase))
    except (ValueError, TypeError) as exc:
        # cryptography raises TypeError for a missing/unexpected passphrase, ValueError for a wrong one
        raise InvalidKeyError(f"cannot load private key: {exc}") from exc


def _aad_bytes(aad: bytes | str) -> bytes:
    return aad.encode("utf-8") if isinstance(aad, str) else aad


# --- private files ----------------------------------------------------------------------------------------


def write_private_file(path: Path | str, data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically; ``FileExistsError`` unless ``overwrite``.

    The file is written in full under a temporary name, then linked into place, so a crash or a
    concurrent start-up never leaves a half-written key behind and never replaces an existing key.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)  # the umask may only narrow the mode; make it exact
        if overwrite:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # fails with FileExistsError instead of clobbering
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# --- identity: signing and verification -------------------------------------------------------------------


class SigningKey:
    """An Ed25519 identity key of a node, the hub or a tablet."""

    alg: Final = ED25519

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._public_raw = private_key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes, passphrase: Passphrase = None) -> SigningKey:
        key = _load_private_pem(data, passphrase)
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidKeyError("not an Ed25519 private key")
        return cls(key)

    def to_pem(self, passphrase: Passphrase = None) -> bytes:
        """PKCS#8 PEM, encrypted with ``passphrase`` when one is given."""
        return _pkcs8_pem(self._key, passphrase)

    @property
    def public_raw(self) -> bytes:
        return self._public_raw

    @property
    def key_id(self) -> str:
        return key_id_of(self._public_raw)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"SigningKey(alg={self.alg!r}, key_id={self.key_id!r})"


def load_or_create_key(path: Path | str, passphrase: Passphrase = None) -> SigningKey:
    """Load the Ed25519 key at ``path``, or create it there (PEM, mode 0600) on first start."""
    target = Path(path)
    if not target.exists():
        key = SigningKey.generate()
        try:
            write_private_file(target, key.to_pem(passphrase))
            return key
        except FileExistsError:
            pass  # another process created it first: use theirs
    return SigningKey.from_pem(target.read_bytes(), passphrase)


def _p256_public_key(public: bytes) -> ec.EllipticCurvePublicKey:
    try:
        if public[:1] in (b"\x02", b"\x03", b"\x04"):  # SEC 1 point, as WebCrypto exportKey("raw")
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
        key = serialization.load_der_public_key(public)  # SPKI, as WebCrypto exportKey("spki")
    except (ValueError, TypeError) as exc:
        raise InvalidKeyError(f"not a P-256 public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidKeyError("not a P-256 public key")
    return key


def normalize_public_key(public: bytes, alg: str) -> bytes:
    """The canonical raw form of a public key for ``alg``: what key ids and enrolment records use.

    Ed25519: 32 raw bytes (raw or SPKI accepted). ECDSA P-256: the 65-byte uncompressed point
    (uncompressed, compressed or SPKI accepted).
    """
    if alg == ED25519:
        if len(public) == 32:
            return public
        try:
            key = serialization.load_der_public_key(public)
        except (ValueError, TypeError) as exc:
            raise InvalidKeyError(f"not an Ed25519 public key: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidKeyError("not an Ed25519 public key")
        return key.public_bytes_raw()
    if alg == ECDSA_P256_SHA256:
        point = _p256_public_key(public)
        return point.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    raise UnsupportedAlgorithmError(f"unknown signature algorithm {alg!r}")


def verify_signature(public_raw: bytes, sig: bytes, data: bytes, *, alg: str = ED25519) -> bool:
    """True when ``sig`` is a valid ``alg`` signature of ``data`` by ``public_raw``.

    Returns False (never raises) for a bad signature or malformed key; raises
    ``UnsupportedAlgorithmError`` for an ``alg`` outside ``SIGNATURE_ALGS``. ECDSA signatures are
    the raw 64-byte r||s form that WebCrypto produces, not DER.
    """
    if alg == ED25519:
        try:
            Ed25519PublicKey.from_public_bytes(public_raw).verify(sig, data)
        except (ValueError, InvalidSignature):
            return False
        return True
    if alg == ECDSA_P256_SHA256:
        if len(sig) != 64:
            return False
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        try:
            _p256_public_key(public_raw).verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        except (InvalidKeyError, ValueError, InvalidSignature):
            return False
        return True
    raise UnsupportedAlgorithmError(f"unknown signature algorithm {alg!r}")


# --- sealing to the district's key ----------------------------------------------------------------------


class EncryptionKeyPair:
    """An X25519 key pair that sealed boxes are addressed to (the district's, or a street's)."""

    def __init__(self, private_key: X25519PrivateKey) -> None:
        self._key = private_key
        self._public_raw = private_key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> EncryptionKeyPair:
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes, passphrase: Passphrase = None) -> EncryptionKeyPair:
        key = _load_private_pem(data, passphrase)
        if not isinstance(key, X25519PrivateKey):
            raise InvalidKeyError("not an X25519 private key")
        return cls(key)

    def to_pem(self, passphrase: Passphrase = None) -> bytes:
        return _pkcs8_pem(self._key, passphrase)

    @classmethod
    def load(cls, path: Path | str, passphrase: Passphrase = None) -> EncryptionKeyPair:
        return cls.from_pem(Path(path).read_bytes(), passphrase)

    def save(self, path: Path | str, passphrase: Passphrase = None, *, overwrite: bool = False) -> None:
        """Write the PEM with mode 0600. Refuses to replace a file: losing the district's key would
        make every record sealed to it unreadable."""
        write_private_file(path, self.to_pem(passphrase), overwrite=overwrite)

    @property
    def private_key(self) -> X25519PrivateKey:
        return self._key

    @property
    def public_raw(self) -> bytes:
        return self._public_raw

    @property
    def key_id(self) -> str:
        return key_id_of(self._public_raw)

    def __repr__(self) -> str:
        return f"EncryptionKeyPair(key_id={self.key_id!r})"


def _seal_key(shared: bytes, epk: bytes, recipient_public_raw: bytes) -> bytes:
    # Salt binds both public keys (as in ECIES/HPKE), info names the algorithm and the recipient:
    # the same shared secret can never yield this key in another context.
    info = f"streetnode/{SEAL_ALG}/{key_id_of(recipient_public_raw)}".encode("ascii")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=epk + recipient_public_raw, info=info)
    return hkdf.derive(shared)


def seal(plaintext: bytes, recipient_public_raw: bytes, aad: bytes | str) -> dict[str, str]:
    """Encrypt ``plaintext`` so only the holder of the recipient's X25519 private key can read it.

    Returns ``{"alg", "kid", "epk", "nonce", "ct"}``; ``epk``, ``nonce`` and ``ct`` (ciphertext with
    the 16-byte GCM tag appended) are base64url. A fresh ephemeral key per call means a fresh
    AES key per record. ``aad`` is authenticated, not stored: the opener must supply the same bytes.
    """
    try:
        recipient = X25519PublicKey.from_public_bytes(recipient_public_raw)
    except ValueError as exc:
        raise InvalidKeyError(f"not an X25519 public key: {exc}") from exc
    ephemeral = X25519PrivateKey.generate()
    epk = ephemeral.public_key().public_bytes_raw()
    key = _seal_key(ephemeral.exchange(recipient), epk, recipient_public_raw)
    nonce = os.urandom(_NONCE_BYTES)
    ct = AESGCM(key).encrypt(nonce, plaintext, _aad_bytes(aad))
    return {
        "alg": SEAL_ALG,
        "kid": key_id_of(recipient_public_raw),
        "epk": b64url_encode(epk),
        "nonce": b64url_encode(nonce),
        "ct": b64url_encode(ct),
    }


def _box_field(box: Mapping[str, Any], name: str, size: int | None = None, minimum: int = 0) -> bytes:
    try:
        data = b64url_decode(box[name])
    except ValueError as exc:
        raise DecryptionError(f"sealed box field {name!r} is not base64url") from exc
    if (size is not None and len(data) != size) or len(data) < minimum:
        raise DecryptionError(f"sealed box field {name!r} has the wrong length")
    return data


def open_sealed(
    box: Mapping[str, Any], recipient_private: EncryptionKeyPair | X25519PrivateKey, aad: bytes | str
) -> bytes:
    """Open a box made by ``seal``; raises a ``CryptoError`` subclass on any tampering or wrong key."""
    pair = (
        recipient_private
        if isinstance(recipient_private, EncryptionKeyPair)
        else EncryptionKeyPair(recipient_private)
    )
    if not isinstance(box, Mapping) or set(box) != _SEALED_BOX_KEYS:
        raise DecryptionError(f"a sealed box has exactly the fields {sorted(_SEALED_BOX_KEYS)}")
    if box["alg"] != SEAL_ALG:
        raise UnsupportedAlgorithmError(f"unknown sealing algorithm {box['alg']!r}")
    if box["kid"] != pair.key_id:
        raise DecryptionError(f"sealed to key {box['kid']!r}, not to this key ({pair.key_id})")
    epk = _box_field(box, "epk", size=32)
    nonce = _box_field(box, "nonce", size=_NONCE_BYTES)
    ct = _box_field(box, "ct", minimum=_TAG_BYTES)
    try:
        # cryptography refuses low-order points (an all-zero shared secret) with ValueError
        shared = pair.private_key.exchange(X25519PublicKey.from_public_bytes(epk))
        return AESGCM(_seal_key(shared, epk, pair.public_raw)).decrypt(nonce, ct, _aad_bytes(aad))
    except (ValueError, InvalidTag) as exc:
        raise DecryptionError("sealed box failed authentication") from exc


# --- data at rest on the node --------------------------------------------------------------------------


class DataKey:
    """The node's 32-byte data key; field encryption and blind indexes use separate HKDF subkeys.

    Callers pass as ``aad`` where a value lives (for example ``"residents.id_card:<row id>"``), so a
    token copied into another row or column fails to decrypt. Random 96-bit nonces keep one key safe
    for about 2**32 encryptions (NIST SP 800-38D), far beyond a street's lifetime of records.
    """

    KEY_BYTES: Final = 32

    def __init__(self, key: bytes) -> None:
        if len(key) != self.KEY_BYTES:
            raise InvalidKeyError(f"a data key is {self.KEY_BYTES} bytes, got {len(key)}")
        self._key = key
        self._aead = AESGCM(self._subkey(b"streetnode/field-encryption/v1"))
        self._index_keys: dict[str, bytes] = {}

    @classmethod
    def generate(cls) -> DataKey:
        return cls(os.urandom(cls.KEY_BYTES))

    @classmethod
    def load(cls, path: Path | str) -> DataKey:
        return cls(Path(path).read_bytes())

    def save(self, path: Path | str, *, overwrite: bool = False) -> None:
        """Write the 32 raw bytes with mode 0600; refuses to replace an existing key file."""
        write_private_file(path, self._key, overwrite=overwrite)

    @classmethod
    def load_or_create(cls, path: Path | str) -> DataKey:
        target = Path(path)
        if not target.exists():
            key = cls.generate()
            try:
                key.save(target)
                return key
            except FileExistsError:
                pass
        return cls.load(target)

    def _subkey(self, info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(self._key)

    def encrypt_field(self, text: str, aad: bytes | str) -> str:
        """AES-256-GCM; returns ``"v1.<b64url nonce>.<b64url ciphertext+tag>"``."""
        nonce = os.urandom(_NONCE_BYTES)
        ct = self._aead.encrypt(nonce, text.encode("utf-8"), _aad_bytes(aad))
        return f"{_FIELD_TOKEN_VERSION}.{b64url_encode(nonce)}.{b64url_encode(ct)}"

    def decrypt_field(self, token: str, aad: bytes | str) -> str:
        parts = token.split(".") if isinstance(token, str) else []
        if len(parts) != 3 or parts[0] != _FIELD_TOKEN_VERSION:
            raise DecryptionError("not a v1 field token")
        try:
            nonce, ct = b64url_decode(parts[1]), b64url_decode(parts[2])
        except ValueError as exc:
            raise DecryptionError("field token is not base64url") from exc
        if len(nonce) != _NONCE_BYTES or len(ct) < _TAG_BYTES:
            raise DecryptionError("field token has the wrong length")
        try:
            return self._aead.decrypt(nonce, ct, _aad_bytes(aad)).decode("utf-8")
        except (InvalidTag, UnicodeDecodeError) as exc:
            raise DecryptionError("field token failed authentication (wrong key, row or column)") from exc

    def blind_index(self, value: str, purpose: str) -> str:
        """Keyed HMAC-SHA256 of ``value`` (64 hex) for equality lookups without the clear value.

        Each ``purpose`` (``"id_card"``, ``"phone"``) has its own HKDF subkey, so equal values under
        different purposes do not link. Normalise before indexing (upper-case the ID-card check
        character, strip spaces): the index matches bytes, not meaning.
        """
        if not _PURPOSE.match(purpose):
            raise ValueError(f"blind index purpose must match {_PURPOSE.pattern}")
        key = self._index_keys.get(purpose)
        if key is None:
            key = self._index_keys[purpose] = self._subkey(f"streetnode/blind-index/v1/{purpose}".encode())
        return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "DataKey(<secret>)"
