"""Working-calendar endpoints: confirming a held earlier due date."""

from __future__ import annotations

from pydantic import Field

from schemas.common import Input


class ConfirmEarlierRequest(Input):
    note: str = Field(min_length=2, max_length=500, description="what the admin checked, e.g. 已核对区政府通知")
