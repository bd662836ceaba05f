"""Reference data of the demo district (广州市天河区): organisation, service catalogue, grid categories.

The data lives as JSON in ``server/data`` and is read through ``importlib.resources``, so it ships
inside the wheel and a node needs no network to know its district. The district hub owns this data
(DESIGN.md §6 rule 4); these models are what it publishes and what a street node accepts.

All models are frozen (reference data is never edited in place; a new version is published) and
forbid unknown fields, so a typo in a data file fails loudly instead of being dropped.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib.resources import files
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Level = Literal["district", "street", "community"]
LngLat = tuple[float, float]

_DIGITS_6 = re.compile(r"^\d{6}$")
_DIGITS_12 = re.compile(r"^\d{12}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# --------------------------------------------------------------------------- organisation


class DistrictSpec(_Frozen):
    code: NonEmpty = Field(description="GB/T 2260 county-level division code, 6 digits")
    stat_code: NonEmpty = Field(description="12-digit statistical division code (统计用区划代码)")
    name: NonEmpty
    full_name: NonEmpty
    government_name: NonEmpty
    code_source: NonEmpty

    @model_validator(mode="after")
    def _codes(self) -> Self:
        if not _DIGITS_6.match(self.code):
            raise ValueError(f"code: division code must be 6 digits, got {self.code!r}")
        if not (_DIGITS_12.match(self.stat_code) and self.stat_code.startswith(self.code)):
            raise ValueError("stat_code: must be 12 digits starting with the division code")
        return self


class DepartmentSpec(_Frozen):
    code: NonEmpty
    name: NonEmpty = Field(description="short name used in routing, e.g. 区民政局")
    full_name: NonEmpty = Field(description="official name, e.g. 广州市天河区民政局")
    # 区残联 is a people's organisation and 消防救援大队 a rescue force: they handle delegated work
    # but are not administrative organs in the OGI sense (domain.md §1.1).
    is_administrative_organ: bool
    duties: tuple[NonEmpty, ...] = Field(min_length=1)


class BusinessUnitTemplateSpec(_Frozen):
    """One kind of 一队三中心 unit; a street instantiates the kinds it actually has."""

    key: NonEmpty = Field(pattern=r"^[a-z][a-z_]*$")
    name: NonEmpty
    former_names: tuple[NonEmpty, ...] = ()
    duties: tuple[NonEmpty, ...] = Field(min_length=1)


class BusinessUnitSpec(_Frozen):
    code: NonEmpty
    template: NonEmpty
    name: NonEmpty


class GridSpec(_Frozen):
    code: NonEmpty
    name: NonEmpty
    polygon: tuple[LngLat, ...] = Field(description="WGS-84 [lng, lat] ring, first point repeated last")

    @model_validator(mode="after")
    def _ring(self) -> Self:
        if len(self.polygon) < 4:
            raise ValueError("polygon: a ring needs at least 4 points (3 corners and the closing point)")
        if self.polygon[0] != self.polygon[-1]:
            raise ValueError("polygon: ring must be closed (last point equal to the first)")
        for lng, lat in self.polygon:
            # mainland China's bounding box; catches swapped [lat, lng] pairs
            if not (73.0 <= lng <= 136.0 and 3.0 <= lat <= 54.0):
                raise ValueError(f"polygon: point [{lng}, {lat}] is outside China or not [lng, lat]")
        return self


class CommunitySpec(_Frozen):
    """A community residents' committee (社区居委会): self-governing, never an administrative organ."""

    code: NonEmpty
    name: NonEmpty
    centre: LngLat | None = None
    code_note: NonEmpty | None = None
    grids: tuple[GridSpec, ...] = ()

    @model_validator(mode="after")
    def _codes(self) -> Self:
        if not _DIGITS_12.match(self.code):
            raise ValueError(f"code: community code must be 12 digits, got {self.code!r}")
        for grid in self.grids:
            if not grid.code.startswith(self.code + "-G"):
                raise ValueError(f"grids: grid code {grid.code!r} must be '<community code>-Gnn'")
        return self


class StreetSpec(_Frozen):
    code: NonEmpty
    name: NonEmpty = Field(description="statistical name, e.g. 石牌街道")
    short_name: NonEmpty = Field(description="name used by the office itself, e.g. 石牌街")
    pilot: bool
    code_note: NonEmpty | None = None
    communities_note: NonEmpty | None = None
    communities: tuple[CommunitySpec, ...] = ()
    business_units: tuple[BusinessUnitSpec, ...] = ()

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if not _DIGITS_12.match(self.code) or not self.code.endswith("000"):
            raise ValueError(f"code: street code must be 12 digits ending in 000, got {self.code!r}")
        for community in self.communities:
            if community.code[:9] != self.code[:9]:
                raise ValueError(
                    f"communities: {community.name} code {community.code} is not under {self.code}"
                )
        if self.pilot and not self.business_units:
            raise ValueError("business_units: a pilot street must list its 一队三中心 units")
        return self


class DistrictOrgSpec(_Frozen):
    """Top level of ``tianhe_org.json``."""

    version: NonEmpty
    geometry_note: NonEmpty
    district: DistrictSpec
    departments: tuple[DepartmentSpec, ...] = Field(min_length=1)
    business_units_template: tuple[BusinessUnitTemplateSpec, ...] = Field(min_length=1)
    streets: tuple[StreetSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        codes: list[str] = [self.district.stat_code]
        codes += [d.code for d in self.departments]
        template_keys = {t.key for t in self.business_units_template}
        for street in self.streets:
            if not street.code.startswith(self.district.code):
                raise ValueError(
                    f"streets: {street.name} code {street.code} is not under {self.district.code}"
                )
            codes.append(street.code)
            for unit in street.business_units:
                if unit.template not in template_keys:
                    raise ValueError(f"business_units: {unit.name} names unknown template {unit.template!r}")
                codes.append(unit.code)
            for community in street.communities:
                codes.append(community.code)
                codes += [g.code for g in community.grids]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"codes must be unique; duplicated: {', '.join(duplicates)}")
        return self

    def street(self, code: str) -> StreetSpec:
        for street in self.streets:
            if street.code == code:
                return street
        raise KeyError(code)

    @property
    def pilot_streets(self) -> tuple[StreetSpec, ...]:
        return tuple(s for s in self.streets if s.pilot)


# --------------------------------------------------------------------------- service catalogue

ItemType = Literal[
    "行政许可",
    "行政处罚",
    "行政强制",
    "行政征收",
    "行政给付",
    "行政检查",
    "行政确认",
    "行政奖励",
    "行政裁决",
    "其他行政权力",
    "公共服务",
]


class MaterialSpec(_Frozen):
    name: NonEmpty
    original_or_copy: Literal["original", "copy", "original_and_copy"]
    copies: int = Field(ge=0, description="paper copies to hand in; 0 when the original is only inspected")
    required: bool
    # government-issued materials can be fetched by data sharing: never ask the applicant again (§1.7)
    issued_by_government: bool
    note: NonEmpty | None = None


class SpecialStepSpec(_Frozen):
    """特殊环节: e.g. public notice, expert assessment. ``pauses_clock``: not counted in the statutory limit."""

    name: NonEmpty
    limit_wd: int = Field(ge=0)
    pauses_clock: bool
    legal_basis: NonEmpty | None = None


class FeeSpec(_Frozen):
    charged: bool
    standard: NonEmpty | None = None
    basis: NonEmpty | None = None

    @model_validator(mode="after")
    def _standard(self) -> Self:
        if self.charged and not (self.standard and self.basis):
            raise ValueError("fees: a charged item needs its standard and its legal basis")
        return self


class ServiceItemSpec(_Frozen):
    """One 政务服务事项 with its 办事指南 (domain.md §1.7, §3.3)."""

    basic_code: NonEmpty = Field(description="基本编码 (GB/T 39554.1); opaque")
    implementation_code: NonEmpty = Field(description="实施编码; opaque")
    name: NonEmpty
    aliases: tuple[NonEmpty, ...] = Field(
        (), max_length=20, description="俗称: the everyday names residents type (低保), maintained by the district"
    )
    item_type: ItemType
    level: Level = Field(description="行使层级: the tier that handles the item")
    accepted_at: tuple[Level, ...] = Field(min_length=1, description="tiers whose windows accept it")
    implementing_body: NonEmpty = Field(description="实施主体, an official department name")
    handling_office: NonEmpty = Field(description="承办机构")
    legal_basis: tuple[NonEmpty, ...] = Field(min_length=1)
    acceptance_conditions: tuple[NonEmpty, ...] = Field(min_length=1)
    materials: tuple[MaterialSpec, ...] = Field(min_length=1)
    statutory_limit_wd: int = Field(ge=0, description="法定时限, working days")
    promised_limit_wd: int = Field(ge=0, description="承诺时限, working days; 0 = 即办 (done on the spot)")
    special_steps: tuple[SpecialStepSpec, ...] = ()
    fees: FeeSpec
    onsite_visits: Literal[0, 1, 2]
    handling_depth: Literal["fully_online", "online_one_visit", "at_window"]
    appointment: bool
    place: NonEmpty
    hours: NonEmpty
    phone: NonEmpty
    complaint_phone: NonEmpty
    result_name: NonEmpty | None = None
    note: NonEmpty | None = None

    @model_validator(mode="after")
    def _limits(self) -> Self:
        # 行政许可法 art. 42 and the Guangdong promise system: a promise may be shorter, never longer
        if self.promised_limit_wd > self.statutory_limit_wd:
            raise ValueError(
                f"promised_limit_wd ({self.promised_limit_wd}) must not exceed "
                f"statutory_limit_wd ({self.statutory_limit_wd}) for {self.name}"
            )
        if self.handling_depth == "fully_online" and self.onsite_visits != 0:
            raise ValueError("onsite_visits: a fully online item needs no visit (0)")
        if self.handling_depth == "online_one_visit" and self.onsite_visits > 1:
            raise ValueError("onsite_visits: an 'online + one visit' item allows at most 1 visit")
        if self.level not in self.accepted_at and self.level != "district":
            raise ValueError("accepted_at: the handling tier must also accept the item")
        return self


class ServiceCatalogueSpec(_Frozen):
    """Top level of ``service_items.json``."""

    version: NonEmpty
    code_note: NonEmpty
    items: tuple[ServiceItemSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        for attr in ("basic_code", "implementation_code", "name"):
            values = [getattr(i, attr) for i in self.items]
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"items: {attr} must be unique; duplicated: {', '.join(duplicates)}")
        return self


# --------------------------------------------------------------------------- grid categories

# calendar_hour: natural hours, for emergencies that do not wait for office hours
TimeUnit = Literal["working_hour", "working_day", "calendar_hour"]


class TimeLimitSpec(_Frozen):
    unit: TimeUnit
    amount: int = Field(gt=0)


class IncidentCategorySpec(_Frozen):
    """A 部件 (fixed object) or 事件 (event) category in the GB/T 30428.2 major/minor layout."""

    code: NonEmpty
    kind: Literal["component", "event"]
    major_class_code: NonEmpty = Field(pattern=r"^\d{2}$")
    major_class: NonEmpty
    minor_class_code: NonEmpty = Field(pattern=r"^\d{4}$")
    minor_class: NonEmpty
    name: NonEmpty
    time_limit: TimeLimitSpec
    closure_condition: NonEmpty
    emergency: bool
    handling_unit_suggestion: NonEmpty = Field(
        description="a department short name or a 一队三中心 unit name"
    )

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if not self.minor_class_code.startswith(self.major_class_code):
            raise ValueError("minor_class_code: must start with the major class code")
        prefix = "BJ" if self.kind == "component" else "SJ"
        if self.code != prefix + self.minor_class_code:
            raise ValueError(f"code: expected {prefix + self.minor_class_code!r} for this kind and class")
        # emergencies escalate at once (domain.md §1.9): a working-day clock would let them wait a weekend
        if self.emergency and self.time_limit.unit == "working_day":
            raise ValueError("time_limit: an emergency category needs an hour-based limit")
        return self


class IncidentCategoryCatalogueSpec(_Frozen):
    """Top level of ``incident_categories.json``."""

    version: NonEmpty
    code_note: NonEmpty
    categories: tuple[IncidentCategorySpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        codes = [c.code for c in self.categories]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"categories: codes must be unique; duplicated: {', '.join(duplicates)}")
        return self


# --------------------------------------------------------------------------- loaders


def _read(name: str) -> object:
    return json.loads(files("server.data").joinpath(name).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def load_tianhe_org() -> DistrictOrgSpec:
    return DistrictOrgSpec.model_validate(_read("tianhe_org.json"))


@lru_cache(maxsize=1)
def load_service_catalogue() -> ServiceCatalogueSpec:
    return ServiceCatalogueSpec.model_validate(_read("service_items.json"))


def load_service_items() -> tuple[ServiceItemSpec, ...]:
    return load_service_catalogue().items


@lru_cache(maxsize=1)
def load_incident_catalogue() -> IncidentCategoryCatalogueSpec:
    return IncidentCategoryCatalogueSpec.model_validate(_read("incident_categories.json"))


def load_incident_categories() -> tuple[IncidentCategorySpec, ...]:
    return load_incident_catalogue().categories


__all__ = [
    "BusinessUnitSpec",
    "BusinessUnitTemplateSpec",
    "CommunitySpec",
    "DepartmentSpec",
    "DistrictOrgSpec",
    "DistrictSpec",
    "FeeSpec",
    "GridSpec",
    "IncidentCategoryCatalogueSpec",
    "IncidentCategorySpec",
    "MaterialSpec",
    "ServiceCatalogueSpec",
    "ServiceItemSpec",
    "SpecialStepSpec",
    "StreetSpec",
    "TimeLimitSpec",
    "load_incident_catalogue",
    "load_incident_categories",
    "load_service_catalogue",
    "load_service_items",
    "load_tianhe_org",
]
