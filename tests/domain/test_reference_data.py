"""The shipped reference data of the demo district loads, validates and hangs together."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.reference import (
    DistrictOrgSpec,
    GridSpec,
    IncidentCategorySpec,
    ServiceItemSpec,
    load_incident_catalogue,
    load_incident_categories,
    load_service_items,
    load_tianhe_org,
)

TIANHE_STREETS = {
    "沙河",
    "五山",
    "员村",
    "车陂",
    "石牌",
    "天河南",
    "林和",
    "沙东",
    "兴华",
    "棠下",
    "天园",
    "猎德",
    "冼村",
    "元岗",
    "黄村",
    "龙洞",
    "长兴",
    "凤凰",
    "前进",
    "珠吉",
    "新塘",
}


def raw(name: str) -> Any:
    return json.loads(files("server.data").joinpath(name).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- organisation


def test_org_lists_all_21_real_streets_of_tianhe() -> None:
    org = load_tianhe_org()
    assert org.district.code == "440106"
    assert {s.short_name.removesuffix("街") for s in org.streets} == TIANHE_STREETS
    assert all(s.name == s.short_name + "道" for s in org.streets)
    assert all(s.code.startswith("440106") and len(s.code) == 12 for s in org.streets)


def test_pilot_streets_are_shipai_and_tianhenan() -> None:
    assert {s.name for s in load_tianhe_org().pilot_streets} == {"石牌街道", "天河南街道"}


def test_every_pilot_street_has_six_communities_and_three_with_grids() -> None:
    for street in load_tianhe_org().pilot_streets:
        assert len(street.communities) >= 6, street.name
        with_grids = [c for c in street.communities if c.grids]
        assert len(with_grids) >= 3, street.name
        assert all(2 <= len(c.grids) <= 4 for c in with_grids)
        assert all(c.name.endswith("社区") for c in street.communities)


def test_grids_lie_in_tianhe_and_around_their_community() -> None:
    for street in load_tianhe_org().pilot_streets:
        for community in street.communities:
            for grid in community.grids:
                assert grid.name.startswith("第") and grid.name.endswith("网格")
                for lng, lat in grid.polygon:
                    # Tianhe's extent: 113.26–113.45 E, 23.10–23.25 N
                    assert 113.26 <= lng <= 113.45 and 23.10 <= lat <= 23.25
                    assert community.centre is not None
                    assert abs(lng - community.centre[0]) < 0.01 and abs(lat - community.centre[1]) < 0.01


def test_every_pilot_street_has_its_one_team_three_centres() -> None:
    org = load_tianhe_org()
    template_names = {t.name for t in org.business_units_template}
    assert {"综合执法队", "政务服务中心", "家庭综合服务中心", "来穗人员服务管理中心"} <= template_names
    for street in org.pilot_streets:
        names = {u.name.removeprefix(street.short_name) for u in street.business_units}
        assert {"综合执法队", "政务服务中心", "家庭综合服务中心", "来穗人员服务管理中心"} <= names


def test_all_org_codes_are_unique() -> None:
    org = load_tianhe_org()
    codes = [d.code for d in org.departments]
    for street in org.streets:
        codes.append(street.code)
        codes += [u.code for u in street.business_units]
        for community in street.communities:
            codes.append(community.code)
            codes += [g.code for g in community.grids]
    assert len(codes) == len(set(codes))


def test_uncertain_codes_say_so() -> None:
    for street in load_tianhe_org().pilot_streets:
        for community in street.communities:
            assert community.code_note, f"{community.name}: every community code carries its provenance"


def test_duplicate_codes_are_rejected() -> None:
    data = raw("tianhe_org.json")
    data["streets"][1]["code"] = data["streets"][0]["code"]
    with pytest.raises(ValidationError, match="duplicated"):
        DistrictOrgSpec.model_validate(data)


def test_unknown_fields_are_rejected() -> None:
    data = raw("tianhe_org.json")
    data["district"]["mayor"] = "x"
    with pytest.raises(ValidationError, match="mayor"):
        DistrictOrgSpec.model_validate(data)


def test_unknown_business_unit_template_is_rejected() -> None:
    data = raw("tianhe_org.json")
    pilot = next(s for s in data["streets"] if s["pilot"])
    pilot["business_units"][0]["template"] = "no_such_unit"
    with pytest.raises(ValidationError, match="unknown template"):
        DistrictOrgSpec.model_validate(data)


@pytest.mark.parametrize(
    ("polygon", "message"),
    [
        ([[113.3, 23.1], [113.4, 23.1], [113.3, 23.1]], "at least 4 points"),
        ([[113.3, 23.1], [113.4, 23.1], [113.4, 23.2], [113.3, 23.2]], "closed"),
        ([[23.1, 113.3], [23.1, 113.4], [23.2, 113.4], [23.1, 113.3]], "outside China"),
    ],
)
def test_bad_grid_polygons_are_rejected(polygon: list[list[float]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GridSpec.model_validate({"code": "440106006001-G01", "name": "第一网格", "polygon": polygon})


# --------------------------------------------------------------------------- service items


def test_catalogue_has_at_least_14_items_with_unique_codes() -> None:
    items = load_service_items()
    assert len(items) >= 14
    assert len({i.basic_code for i in items}) == len(items)
    assert len({i.implementation_code for i in items}) == len(items)


def test_every_promise_is_within_the_statutory_limit() -> None:
    for item in load_service_items():
        assert item.promised_limit_wd <= item.statutory_limit_wd, item.name


def test_implementing_bodies_are_departments_of_the_district() -> None:
    full_names = {d.full_name for d in load_tianhe_org().departments}
    for item in load_service_items():
        assert item.implementing_body in full_names, item.name


def test_catalogue_covers_the_core_street_items() -> None:
    names = {i.name for i in load_service_items()}
    for expected in (
        "最低生活保障审批",
        "临时救助",
        "高龄老人津贴",
        "广州市居住证办理",
        "就业失业登记",
        "特困人员供养",
        "残疾人两项补贴",
    ):
        assert expected in names


def _item(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = dict(raw("service_items.json")["items"][0])
    data.update(changes)
    return data


def test_promise_longer_than_statutory_limit_names_the_field() -> None:
    with pytest.raises(ValidationError, match="promised_limit_wd"):
        ServiceItemSpec.model_validate(_item(statutory_limit_wd=20, promised_limit_wd=25))


@pytest.mark.parametrize("field", ["basic_code", "implementation_code"])
def test_codes_must_not_be_empty(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        ServiceItemSpec.model_validate(_item(**{field: "  "}))


def test_fully_online_item_needs_no_visit() -> None:
    with pytest.raises(ValidationError, match="onsite_visits"):
        ServiceItemSpec.model_validate(_item(handling_depth="fully_online", onsite_visits=1))


def test_charged_fee_needs_standard_and_basis() -> None:
    with pytest.raises(ValidationError, match="standard"):
        ServiceItemSpec.model_validate(_item(fees={"charged": True}))


# --------------------------------------------------------------------------- incident categories


def test_at_least_20_categories_with_2_emergencies() -> None:
    categories = load_incident_categories()
    assert len(categories) >= 20
    assert sum(c.emergency for c in categories) >= 2
    assert len({c.code for c in categories}) == len(categories)
    assert {c.kind for c in categories} == {"component", "event"}


def test_reference_limits_match_the_published_examples() -> None:
    by_name = {c.name: c for c in load_incident_categories()}
    assert (by_name["暴露垃圾"].time_limit.unit, by_name["暴露垃圾"].time_limit.amount) == ("working_day", 1)
    assert by_name["暴露垃圾"].closure_condition == "清除"
    assert (by_name["违法搭建"].time_limit.unit, by_name["违法搭建"].time_limit.amount) == ("working_day", 15)
    assert by_name["违法搭建"].closure_condition == "拆除"
    assert {"燃气泄漏", "火情隐患", "树木倒伏"} <= {c.name for c in load_incident_categories() if c.emergency}


def test_emergencies_are_timed_in_hours() -> None:
    for category in load_incident_categories():
        if category.emergency:
            assert category.time_limit.unit != "working_day", category.name


def test_handling_units_exist_in_the_org_reference() -> None:
    org = load_tianhe_org()
    known = {d.name for d in org.departments} | {t.name for t in org.business_units_template}
    for category in load_incident_categories():
        assert category.handling_unit_suggestion in known, category.name


def test_emergency_on_a_working_day_clock_is_rejected() -> None:
    data = dict(raw("incident_categories.json")["categories"][0])
    data.update(emergency=True, time_limit={"unit": "working_day", "amount": 1})
    with pytest.raises(ValidationError, match="hour-based"):
        IncidentCategorySpec.model_validate(data)


def test_loaders_return_the_same_cached_objects() -> None:
    assert load_tianhe_org() is load_tianhe_org()
    assert load_incident_catalogue() is load_incident_catalogue()
    assert load_service_items() is load_service_items()
