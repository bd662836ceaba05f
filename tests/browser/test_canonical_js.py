"""The PWA's canonical JSON is byte-identical to the node's (signatures and payload hashes depend
on it), and its masks match server/domain/personal.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.domain.canonical import canonical_json
from server.domain.personal import mask_id_card, mask_name, mask_phone
from tests.browser.conftest import Node, open_app

pytestmark = pytest.mark.browser

SAMPLES: list[Any] = [
    {"b": 1, "a": [True, False, None], "中文": "石牌街道\u3000第一网格", "z": {"y": "", "x": -7}},
    {"esc": "引号\"反斜杠\\换行\n制表\t回车\r\b\f\u0001\u001f\u007f\u2028\u2029", "emoji": "👍🏽"},
    {"keys": {"\U0001f600": 1, "\uff5e": 2, "a": 3, "B": 4, "é": 5}},
    {"lng": 113.3411, "lat": 23.1318, "accuracy_m": 8, "tiny": 0.0001, "big": 123456789012345},
    [[], {}, [{}], "", 0, -0.5],
]


def test_js_canonical_json_matches_python_byte_for_byte(page: Any, node: Node) -> None:
    open_app(page, node, "#/track")
    got = page.evaluate(
        """async (samples) => {
            const { canonicalBytes } = await import('/js/canonical.js');
            return samples.map((s) => Array.from(canonicalBytes(s)));
        }""",
        SAMPLES,
    )
    for sample, js_bytes in zip(SAMPLES, got, strict=True):
        assert bytes(js_bytes) == canonical_json(json.loads(json.dumps(sample))), sample


def test_js_masks_match_the_node(page: Any, node: Node) -> None:
    open_app(page, node, "#/track")
    names = ["张", "张三", "陈大文", "欧阳小明"]
    got = page.evaluate(
        """async (names) => {
            const ui = await import('/js/ui.js');
            return {names: names.map(ui.maskName), phone: ui.maskPhone('13812345678'), id: ui.maskId('44010619900101123x')};
        }""",
        names,
    )
    assert got["names"] == [mask_name(n) for n in names]
    assert got["phone"] == mask_phone("13812345678")
    assert got["id"] == mask_id_card("44010619900101123x")
