"""Grid management (网格化管理): the incident report form, patrol logs, each transition's payload, API shapes.

What a grid member's tablet sends:

- an ``incident_report`` envelope (``form_id`` ``incident_report``, ``form_version`` ``1``): payload
  ``IncidentReportPayload``; its photos travel as the envelope's ``attachments`` (at least one
  ``image/*``), uploaded by sha256 to ``/sync/v1/blobs``;
- a ``patrol_log`` envelope: payload ``PatrolLogPayload``;
- later steps as ``case_event`` envelopes or ``POST /api/v1/cases/{id}/events``: ``transition`` and a
  payload of the model in ``TRANSITION_PAYLOADS`` (photos there are ``PhotoRef`` lists in the payload).

The JSON Schemas of these forms are exported to ``schemas/json/`` (``export_json_schemas``); a test
keeps the files current, and the PWA builds its forms from them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, model_validator

from schemas.common import Input, Output
from schemas.reference import IncidentCategorySpec

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
IMAGE_MIMES = ("image/jpeg", "image/png", "image/webp", "image/heic", "image/heif")

IncidentSource = Literal["patrol", "resident", "hotline_12345", "video", "leader_instruction"]
NotFiledReason = Literal["not_genuine", "not_in_scope", "duplicate", "already_solved", "insufficient_info", "other"]
ReturnReason = Literal["not_our_duty", "wrong_location", "insufficient_info", "needs_coordination", "other"]


class GeoPoint(Input):
    """A WGS-84 position (GPS), optionally with the address the member typed or picked."""

    lng: float = Field(ge=73.0, le=136.0, description="经度 (WGS-84)")
    lat: float = Field(ge=3.0, le=54.0, description="纬度 (WGS-84)")
    accuracy_m: float | None = Field(None, ge=0, le=10_000, description="GPS 精度（米）")
    place: str | None = Field(None, max_length=200, description="地点描述，如“石牌东路 12 号门前”（非个人信息）")


class PhotoRef(Input):
    """A photo already uploaded as a blob (content-addressed by sha256)."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    mime: Literal["image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"]
    name: str | None = Field(None, max_length=255)
    size: int | None = Field(None, ge=0)


Photos = Annotated[list[PhotoRef], Field(min_length=1, max_length=20)]


# --------------------------------------------------------------------------- the report form


class IncidentReportPayload(Input):
    """上报事件: what a grid member reports. Photos: the envelope's image attachments (at least one)."""

    category_code: str = Field(min_length=1, max_length=16, description="事件/部件类别代码，见 /api/v1/grid/categories")
    location: GeoPoint = Field(description="位置：须在上报网格员所属网格内")
    description: Text = Field(description="问题描述")
    source: IncidentSource = Field("patrol", description="来源：巡查、居民反映、12345 转办、视频、领导批示")
    occurred_at: AwareDatetime | None = Field(None, description="发现时间（设备时间）")
    component_id: str | None = Field(None, max_length=64, description="部件编码（部件类问题）")
    patrol_id: str | None = Field(None, max_length=64, description="所属巡查记录（patrol_log 的 submission_id）")
    photos: list[PhotoRef] = Field(
        default_factory=list, max_length=20,
        description="现场照片；通常作为信封附件（attachments）上传，也可在此列出已上传的照片",
    )


# --------------------------------------------------------------------------- patrol logs


class RoutePoint(Input):
    lng: float = Field(ge=73.0, le=136.0)
    lat: float = Field(ge=3.0, le=54.0)
    at: AwareDatetime | None = None


class PatrolFinding(Input):
    note: Text = Field(description="巡查发现")
    location: GeoPoint | None = None
    incident_id: str | None = Field(
        None, max_length=64, description="关联事件：incident_report 信封的 submission_id（即事件 id）"
    )


class PatrolLogPayload(Input):
    """巡查日志: one finished patrol, sent once when the member ends it."""

    started_at: AwareDatetime
    ended_at: AwareDatetime
    route: list[RoutePoint] = Field(default_factory=list, max_length=5000, description="轨迹点")
    findings: list[PatrolFinding] = Field(default_factory=list, max_length=200)
    note: str | None = Field(None, max_length=1000)

    @model_validator(mode="after")
    def _times(self) -> PatrolLogPayload:
        if self.ended_at < self.started_at:
            raise ValueError("ended_at: 结束时间不能早于开始时间")
        if (self.ended_at - self.started_at).total_seconds() > 24 * 3600:
            raise ValueError("ended_at: 一次巡查不能超过 24 小时")
        return self


# --------------------------------------------------------------------------- transition payloads


class _Step(Input):
    note: str | None = Field(None, max_length=1000, description="备注")


class AcceptPayload(_Step):
    """受理：受理员受理并派网格员核实。"""


class VerifyPayload(_Step):
    """核实：网格员到现场核实。"""

    genuine: bool = Field(description="情况是否属实")
    verify_photos: list[PhotoRef] = Field(default_factory=list, max_length=20)
    verify_location: GeoPoint | None = None


class FilePayload(_Step):
    """立案（值班长）。"""


class NotFilePayload(_Step):
    not_filed_reason_code: NotFiledReason
    not_filed_reason: Text


class DispatchPayload(_Step):
    unit_code: str = Field(min_length=1, max_length=64, description="处置单位：区职能部门、街道一队三中心或网格")
    instruction: str | None = Field(None, max_length=1000, description="派遣意见")


class ReturnPayload(_Step):
    return_reason_code: ReturnReason
    return_reason: Text


class AcceptTaskPayload(_Step):
    """签收。"""


class OnAccountRequestPayload(_Step):
    on_account_reason: Text = Field(description="书面说明：为何延期后仍无法处置（挂账理由）")
    plan: str | None = Field(None, max_length=1000, description="后续处置计划")


class OnAccountDecisionPayload(_Step):
    decision_reason: str | None = Field(None, max_length=1000)


class OnAccountRejectPayload(_Step):
    decision_reason: Text


class FeedbackPayload(_Step):
    result: Text = Field(description="处置结果")
    after_photos: Photos = Field(description="处置后照片（至少一张）")
    feedback_location: GeoPoint | None = None


class RequestCheckPayload(_Step):
    """受理员派网格员现场核查。"""


class CheckPassPayload(_Step):
    check_photos: Photos = Field(description="核查照片（至少一张）")
    check_location: GeoPoint = Field(description="核查位置：须在事件位置附近")


class CheckFailPayload(_Step):
    rework_reason: Text = Field(description="核查不通过的原因")
    check_photos: Photos
    check_location: GeoPoint


class ClosePayload(_Step):
    closure_code: Literal["resolved"] = "resolved"


class ReworkPayload(_Step):
    rework_reason: Text


class LiftOnAccountPayload(_Step):
    """解除挂账，恢复处置。"""


class MergePayload(_Step):
    merged_into: str = Field(min_length=1, max_length=64)
    merge_reason: str | None = Field(None, max_length=1000)


class AbsorbPayload(_Step):
    merged_case: str = Field(min_length=1, max_length=64)
    merge_reason: str | None = Field(None, max_length=1000)


class ExpirePayload(Input):
    """系统：挂账到期。"""


TRANSITION_PAYLOADS: dict[str, type[BaseModel]] = {
    "accept": AcceptPayload,
    "verify": VerifyPayload,
    "file": FilePayload,
    "not_file": NotFilePayload,
    "dispatch": DispatchPayload,
    "redispatch": DispatchPayload,
    "return": ReturnPayload,
    "accept_task": AcceptTaskPayload,
    "request_on_account": OnAccountRequestPayload,
    "approve_on_account": OnAccountDecisionPayload,
    "reject_on_account": OnAccountRejectPayload,
    "expire_on_account": ExpirePayload,
    "lift_on_account": LiftOnAccountPayload,
    "feedback": FeedbackPayload,
    "request_check": RequestCheckPayload,
    "check_pass": CheckPassPayload,
    "check_fail": CheckFailPayload,
    "close": ClosePayload,
    "rework": ReworkPayload,
    "merge": MergePayload,
    "absorb": AbsorbPayload,
}


# --------------------------------------------------------------------------- preventive work (源头治理)


class PreventiveCompletePayload(_Step):
    result: Text
    photos: list[PhotoRef] = Field(default_factory=list, max_length=20)


class PreventiveDecisionPayload(_Step):
    reason: str | None = Field(None, max_length=1000)


PREVENTIVE_PAYLOADS: dict[str, type[BaseModel]] = {
    "complete": PreventiveCompletePayload,
    "accept_work": PreventiveDecisionPayload,
    "reopen": PreventiveDecisionPayload,
    "cancel": PreventiveDecisionPayload,
}


# --------------------------------------------------------------------------- API requests and responses


class GridSettings(Input):
    """Street-configurable thresholds (GET/PUT /api/v1/grid/settings)."""

    duplicate_radius_m: int = Field(50, ge=5, le=2000, description="疑似重复：距离阈值（米）")
    duplicate_window_hours: int = Field(24, ge=1, le=24 * 30, description="疑似重复：时间窗（小时）")
    hotspot_radius_m: int = Field(100, ge=10, le=2000, description="热点：同一地点半径（米）")
    hotspot_window_days: int = Field(90, ge=1, le=730, description="热点：统计时间窗（天）")
    hotspot_min_reports: int = Field(3, ge=2, le=100, description="热点：最少重复次数")
    on_account_review_days: int = Field(30, ge=1, le=365, description="挂账复核周期（自然日）")
    check_radius_m: int = Field(100, ge=10, le=2000, description="核查位置与事件位置的最大距离（米）")


class CategoryInput(IncidentCategorySpec):
    """A category as the district configures it (PUT /api/v1/grid/categories/{code})."""

    active: bool = Field(True, description="停用的类别不再出现在上报选择中，已有事件不受影响")


class MergeRequest(Input):
    into: str = Field(min_length=1, max_length=64, description="保留的事件 id")
    reason: str | None = Field(None, max_length=1000, description="并单理由")


class PreventiveRequest(Input):
    measure: Text = Field(description="预防措施，如“增设垃圾桶并张贴告示”")
    unit_code: str = Field(min_length=1, max_length=64, description="负责单位")
    due_working_days: int = Field(10, ge=1, le=60, description="完成时限（工作日）")


class CategoryOut(Output):
    code: str
    kind: str
    kind_label: str
    major_class_code: str
    major_class: str
    minor_class_code: str
    minor_class: str
    name: str
    time_limit: dict[str, Any]
    time_limit_label: str
    closure_condition: str
    emergency: bool
    handling_unit_suggestion: str
    active: bool


class CategoriesResponse(Output):
    ok: bool = True
    version: str
    categories: list[CategoryOut]


class GridCaseOut(Output):
    """One incident in a list (tasks, board): no personal data."""

    id: str
    number: str
    state: str
    state_label: str
    org_path: str
    grid_code: str
    category_code: str
    category_name: str
    emergency: bool
    description: str
    location: dict[str, Any]
    reported_at: str
    due_at: str | None
    remaining_seconds: int | None
    overdue: bool
    actions: list[str] = Field(default_factory=list, description="当前用户可执行的操作")
    possible_duplicates: int = 0


class BoardResponse(Output):
    ok: bool = True
    counts: dict[str, int]
    overdue: int
    emergencies: int
    cases: list[GridCaseOut]


class TasksResponse(Output):
    ok: bool = True
    tasks: list[GridCaseOut]


class DuplicateOut(Output):
    id: str
    number: str
    state: str
    state_label: str
    distance_m: float
    hours_apart: float
    description: str
    reported_at: str


class HotspotOut(Output):
    id: str
    category_code: str
    category_name: str
    lng: float
    lat: float
    org_path: str
    reports: int
    first_reported_at: str
    last_reported_at: str
    status: str
    preventive_case_id: str | None
    case_ids: list[str]


class PatrolOut(Output):
    id: str
    member_id: str
    member_name: str
    grid_code: str
    started_at: str
    ended_at: str
    minutes: int
    distance_m: float
    points: int
    findings: list[dict[str, Any]]


# --------------------------------------------------------------------------- JSON Schema export

FORMS: dict[str, type[BaseModel]] = {"incident_report": IncidentReportPayload, "patrol_log": PatrolLogPayload}


def form_schemas() -> dict[str, dict[str, Any]]:
    """File name (without .json) -> JSON Schema, for ``schemas/json/``."""
    out: dict[str, dict[str, Any]] = {name: model.model_json_schema() for name, model in FORMS.items()}
    out["incident_report"]["x-attachments"] = {
        "min_images": 1,
        "mime": list(IMAGE_MIMES),
        "note": "照片作为信封附件上传（sha256 内容寻址），至少一张图片",
    }
    out["grid_event_payloads"] = {
        "title": "GridEventPayloads",
        "description": "网格事件各操作（transition）的 payload",
        "transitions": {name: model.model_json_schema() for name, model in TRANSITION_PAYLOADS.items()},
    }
    return out


def export_json_schemas(directory: Path | None = None) -> list[Path]:
    """Write the grid forms' JSON Schemas to ``schemas/json/<name>.json``; returns the paths written."""
    directory = directory or Path(__file__).parent / "json"
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in form_schemas().items():
        path = directory / f"{name}.json"
        path.write_text(json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # python -m schemas.grid
    for path in export_json_schemas():
        print(path)
