"""Request bodies of sync leg A (tablet ⇄ street node) besides the envelope itself (schemas.envelope)."""

from __future__ import annotations

from pydantic import Field

from schemas.common import Input
from schemas.envelope import SignatureAlg

__all__ = ["EnrolmentRequest", "RegisterDeviceRequest", "RevokeDeviceRequest"]


class EnrolmentRequest(Input):
    label: str = Field("", max_length=64, description="what the tablet is called on the device list, e.g. 网格一号平板")
    org_unit: str | None = Field(None, max_length=64, description="unit the tablet serves; default the admin's own")
    ttl_minutes: int = Field(60, ge=5, le=7 * 24 * 60, description="how long the one-time code stays valid")


class RegisterDeviceRequest(Input):
    code: str = Field(min_length=4, max_length=32, description="the one-time enrolment code (QR or typed)")
    public_key: str = Field(min_length=40, max_length=200, pattern=r"^[A-Za-z0-9_-]+$",
                            description="the device's raw public key, base64url without padding")
    alg: SignatureAlg = Field(description="Ed25519, or ECDSA-P256-SHA256 where the browser lacks Ed25519")
    label: str = Field("", max_length=64)


class RevokeDeviceRequest(Input):
    reason: str = Field(min_length=1, max_length=200, description="why, for the audit log (lost, replaced …)")
