"""Services hall: the application form (envelope payload), catalogue edits, ratings and appeals.

Shapes only; the rules (ID-card checksum, tiers, limits of the item) are applied by the intake
handler and the domain. ``export_json_schemas`` writes the forms the PWA renders to
``schemas/json/`` (a test keeps the files current).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StringConstraints, ValidationInfo, field_validator

from schemas.common import Input
from schemas.reference import ServiceItemSpec

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
UUID7_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"

# Scans and photos of materials (domain.md §1.7); the PWA compresses photos and strips EXIF first.
MaterialMime = Literal["application/pdf", "image/jpeg", "image/png", "image/webp"]
ALLOWED_MATERIAL_MIME: tuple[str, ...] = ("application/pdf", "image/jpeg", "image/png", "image/webp")


class ApplicantInput(Input):
    """申请人: encrypted at rest by the node, masked in every list (DESIGN.md §4)."""

    applicant_type: Literal["individual"] = Field("individual", title="申请人类型")
    name: Text = Field(max_length=50, title="姓名")
    id_card: Text = Field(max_length=32, title="居民身份证号码", description="18 位，GB 11643 校验")
    phone: Text = Field(max_length=20, title="手机号码")
    address: Text = Field(max_length=200, title="联系地址")


class MaterialInput(Input):
    """One scanned or photographed material, uploaded as a blob (``/sync/v1/blobs/{sha256}``)."""

    material: Text = Field(max_length=100, title="材料名称", description="办事指南中的材料名称")
    file_name: Text = Field(max_length=255, pattern=r"^[^/\\\x00-\x1f]+$", title="文件名")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", title="SHA-256")
    size: int = Field(ge=1, title="字节数")
    mime: MaterialMime = Field(title="文件类型")


class ServiceApplicationPayload(Input):
    """Payload of a ``service_application`` envelope: one application received at a window."""

    case_id: str | None = Field(None, pattern=UUID7_PATTERN, title="办件 ID（客户端生成的 UUIDv7，可选）")
    item_code: Text = Field(max_length=64, title="事项实施编码")
    applicant: ApplicantInput = Field(title="申请人")
    materials: list[MaterialInput] = Field(default_factory=list, max_length=50, title="申请材料")
    note: str = Field("", max_length=500, title="备注")

    @field_validator("materials")
    @classmethod
    def _unique_files(cls, value: list[MaterialInput]) -> list[MaterialInput]:
        names = [m.file_name for m in value]
        if len(names) != len(set(names)):
            raise ValueError("同一申请中的文件名不能重复")
        return value


class CatalogueItemInput(ServiceItemSpec):
    """A catalogue item as the district edits it; the promised limit is checked at its own field."""

    @field_validator("promised_limit_wd")
    @classmethod
    def _promise_within_statute(cls, value: int, info: ValidationInfo) -> int:
        # 行政许可法 art. 42 and the promise system: a promise may be shorter, never longer
        statutory = info.data.get("statutory_limit_wd")
        if isinstance(statutory, int) and value > statutory:
            raise ValueError(f"承诺时限（{value} 个工作日）不得超过法定时限（{statutory} 个工作日）")
        return value


class RatingRequest(Input):
    """好差评 from the resident's own channel: the token printed on the receipt (QR code)."""

    token: str = Field(min_length=16, max_length=128, title="评价码")
    stage: Literal["receipt", "acceptance", "completion"] = Field(title="评价环节")
    channel: Literal["online", "offline"] = Field("offline", title="评价渠道")
    level: int = Field(ge=1, le=5, title="总体评价（1–5 星）")
    indicators: dict[str, int] = Field(default_factory=dict, title="分项指标评分")
    comment: str = Field("", max_length=500, title="意见建议")
    problems: list[Annotated[str, StringConstraints(max_length=50)]] = Field(
        default_factory=list, max_length=10, title="差评问题类型"
    )


class AppealRequest(Input):
    reason: Text = Field(max_length=1000, title="申诉理由", description="误评或恶意差评的事实与证据")


class AppealReviewRequest(Input):
    decision: Literal["upheld", "rejected"] = Field(title="复核结论")
    reason: Text = Field(max_length=1000, title="复核意见")


class HallSettingsRequest(Input):
    rectification_wd: int = Field(ge=1, le=60, title="差评整改时限（工作日）")


class HallSettings(Input):
    """The services hall's node settings (the kind's ``settings_model``; stored in ``kind_settings``)."""

    # 15 working days: Sichuan and Zhejiang practice (domain.md §3.4), as evaluation.DEFAULT_RECTIFICATION_WD
    rectification_wd: int = Field(15, ge=1, le=60, title="差评整改时限（工作日）")


# --- transition payloads (the engine validates them in ``decide``; the PWA renders forms from them) ---------


class _HallStep(Input):
    note: str | None = Field(None, max_length=1000, title="备注")


Reasons = Annotated[list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]],
                    Field(min_length=1, max_length=20)]


class PreReviewPassPayload(_HallStep):
    """预审通过。"""


class PreReviewReturnPayload(_HallStep):
    """预审退回：逐项写明退回理由。"""

    reasons: Reasons = Field(title="退回理由")


class ResubmitPayload(_HallStep):
    """申请人按预审意见重新提交。"""


class BookAppointmentPayload(_HallStep):
    slot: AwareDatetime = Field(title="预约时段（开始时间）")


class OnsiteCheckPayload(_HallStep):
    verified: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]] = Field(
        min_length=1, max_length=50, title="已核验原件的材料名称")


class CorrectionNoticePayload(_HallStep):
    """一次性补正告知（行政许可法第三十二条）：一次列明全部需补正的材料。"""

    items: Reasons = Field(title="需补正的材料")


class HandUpPayload(_HallStep):
    """报送区级部门。"""


class AcceptPayload(_HallStep):
    """受理。"""


class NotAcceptPayload(_HallStep):
    reasons: Reasons = Field(title="不予受理理由")


class StartHandlingPayload(_HallStep):
    opinion: Text = Field(max_length=2000, title="承办意见")


class EndSpecialPayload(_HallStep):
    result: Text = Field(max_length=2000, title="特别程序结果")


class DecidePayload(_HallStep):
    outcome: Literal["approved", "refused"] = Field(title="办结结果（准予 / 不予）")
    reasons: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=20, title="不予许可的理由")
    result: str | None = Field(None, max_length=2000, title="办理结果（如核发的证照）")


class DeliverPayload(_HallStep):
    method: Literal["window", "courier", "e_licence", "post"] = Field(title="送达方式")


# Transitions whose fields are still changing with the clock rules (特别程序 from the catalogue's declared
# steps, extensions with approver and notice date, the correction's receipt date) get their models with them.
TRANSITION_PAYLOADS: dict[str, type[Input]] = {
    "pre_review_pass": PreReviewPassPayload,
    "pre_review_return": PreReviewReturnPayload,
    "resubmit": ResubmitPayload,
    "book_appointment": BookAppointmentPayload,
    "onsite_check": OnsiteCheckPayload,
    "correction_notice": CorrectionNoticePayload,
    "hand_up": HandUpPayload,
    "accept": AcceptPayload,
    "not_accept": NotAcceptPayload,
    "start_handling": StartHandlingPayload,
    "end_special": EndSpecialPayload,
    "decide": DecidePayload,
    "deliver": DeliverPayload,
}


FORM_SCHEMAS: dict[str, type[Input]] = {
    "service_application": ServiceApplicationPayload,
    "service_rating": RatingRequest,
}


def form_schema(name: str) -> dict[str, Any]:
    return FORM_SCHEMAS[name].model_json_schema()


def export_json_schemas(target: Path | None = None) -> list[Path]:
    """Write each form's JSON Schema to ``schemas/json/<name>.json``; returns the paths written."""
    target = target or Path(__file__).parent / "json"
    target.mkdir(parents=True, exist_ok=True)
    out = []
    for name in FORM_SCHEMAS:
        path = target / f"{name}.json"
        path.write_text(json.dumps(form_schema(name), ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                        encoding="utf-8")
        out.append(path)
    return out


if __name__ == "__main__":  # python -m schemas.hall
    for written in export_json_schemas():
        print(written)
