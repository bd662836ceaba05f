"""Services hall: the application form (envelope payload), catalogue edits, ratings and appeals.

Shapes only; the rules (ID-card checksum, tiers, limits of the item) are applied by the intake
handler and the domain. ``export_json_schemas`` writes the forms the PWA renders to
``schemas/json/`` (a test keeps the files current).
"""

from __future__ import annotations

import json
from datetime import date
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


class WithdrawItemRequest(Input):
    """停止办理: the district stops offering an item (its revisions stay for the cases that used them)."""

    reason: str = Field(min_length=1, max_length=500, description="why the item is no longer offered")


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


class ReceiveCorrectionPayload(_HallStep):
    """补正受理：the acceptance period runs again from the day the corrected materials were received."""

    received_on: date | None = Field(None, title="收到补正材料日期", description="邮寄等非当面补正时填写；缺省为登记时间")


class SpecialProcedurePayload(_HallStep):
    """特别程序申请 (行政许可法 art. 45): the procedure, why, and how the applicant was told in writing.

    Only the item's declared special steps not counted in the limit, or the procedures art. 45 names,
    pause the clock; the domain guard checks the name against the catalogue.
    """

    procedure: Text = Field(max_length=100, title="特别程序",
                            description="办事指南列明的特殊环节，或听证、招标、拍卖、检验、检测、检疫、鉴定、专家评审")
    reason: Text = Field(max_length=500, title="理由")
    notice: Text = Field(max_length=500, title="书面告知申请人情况")


class ExtensionPayload(_HallStep):
    """延期 (行政许可法 art. 42): once, at most 10 working days, within the limit, on the head's approval."""

    days: int = Field(ge=1, le=10, title="延长工作日数")
    reason: Text = Field(max_length=500, title="延期理由")
    approver: str = Field("", max_length=50, title="批准人")
    notified_on: date | None = Field(None, title="告知申请人日期")


class DecidePayload(_HallStep):
    outcome: Literal["approved", "refused"] = Field(title="办结结果（准予 / 不予）")
    reasons: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=20, title="不予许可的理由")
    result: str | None = Field(None, max_length=2000, title="办理结果（如核发的证照）")


class DeliverPayload(_HallStep):
    method: Literal["window", "courier", "e_licence", "post"] = Field(title="送达方式")


TRANSITION_PAYLOADS: dict[str, type[Input]] = {
    "pre_review_pass": PreReviewPassPayload,
    "pre_review_return": PreReviewReturnPayload,
    "resubmit": ResubmitPayload,
    "book_appointment": BookAppointmentPayload,
    "onsite_check": OnsiteCheckPayload,
    "correction_notice": CorrectionNoticePayload,
    "receive_correction": ReceiveCorrectionPayload,
    "hand_up": HandUpPayload,
    "accept": AcceptPayload,
    "not_accept": NotAcceptPayload,
    "start_handling": StartHandlingPayload,
    "start_special": SpecialProcedurePayload,
    "end_special": EndSpecialPayload,
    "extend": ExtensionPayload,
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
