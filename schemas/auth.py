"""Sign-in request and response."""

from __future__ import annotations

from pydantic import Field

from schemas.common import Input, Output


class LoginRequest(Input):
    username: str = Field(min_length=1, max_length=64, description="用户名")
    password: str = Field(min_length=1, max_length=256, description="密码")
    device_id: str | None = Field(None, max_length=64, description="enrolled tablet id, if any")


class UserOut(Output):
    id: str
    username: str
    display_name: str
    role: str
    role_label: str
    org_unit: str
    org_path: str
    org_name: str = Field("", description="the unit's name, printed on what the user issues (receipts)")


class LoginResponse(Output):
    ok: bool = True
    token: str
    token_type: str = "Bearer"
    expires_at: str
    user: UserOut
