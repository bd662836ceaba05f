"""A test-only case kind a street hands up to a district department, which decides it."""

from __future__ import annotations

from server.domain.engine import CREATE, CaseKind, CaseView, Draft, Transition
from server.domain.kinds import register
from server.domain.roles import Role, Tier

DEPARTMENT_PATH = "440106/440106-MZJ"  # 区民政局: the demo approver's department


def _to_department(view: CaseView, draft: Draft) -> str:
    return DEPARTMENT_PATH


HANDUP = register(
    CaseKind(
        name="test_handup",
        label_zh="测试上报事项",
        states={"submitted": "已申请", "handed_up": "已报区级", "approved": "区级已批准", "refused": "区级不予批准"},
        transitions={
            "submit": Transition("submit", "submitted", frozenset({CREATE}), frozenset({Role.WINDOW_CLERK}), "申请"),
            "hand_up": Transition("hand_up", "handed_up", frozenset({"submitted"}), frozenset({Role.STREET_HANDLER}),
                                  "报送区级部门", route=_to_department),
            "approve": Transition("approve", "approved", frozenset({"handed_up"}),
                                  frozenset({Role.DISTRICT_APPROVER}), "批准", tiers=frozenset({Tier.DISTRICT})),
            "refuse": Transition("refuse", "refused", frozenset({"handed_up"}), frozenset({Role.DISTRICT_APPROVER}),
                                 "不予批准", tiers=frozenset({Tier.DISTRICT}), required=("reason",)),
        },
        terminal=frozenset({"approved", "refused"}),
    )
)
