"""Offline bundles both ways: the same batches and packages; twice is harmless; tampered or truncated refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.domain.ids import now_china
from server.store.calendars import publish_version
from sync.bundle import BundleError
from sync.bundle_flows import export_down, export_up, import_down, import_up
from tests.syncb.conftest import Pair
from tests.syncb.test_down_packages import ENTRIES


def counts(p: Pair) -> tuple[int, int]:
    hub = p.hub_store.query("SELECT COUNT(*) AS n FROM hub_rows")[0]["n"]
    street = p.street_store.query("SELECT COUNT(*) AS n FROM change_log")[0]["n"]
    return hub, street


def test_a_round_trip_by_usb_moves_changes_up_and_packages_down(pair: Pair, tmp_path: Path) -> None:
    for i in range(5):
        pair.new_case(f"离线 {i}", applicant_name="李四")
    pair.hub_store.write(lambda db: publish_version(db, version="usb-v1", entries=ENTRIES, source_notice="",
                                                    actor="a", role="district_admin", now=now_china()))
    up = tmp_path / "up.bundle"
    out = export_up(pair.street_store, pair.street, up, now_china)
    assert out["rows"] == counts(pair)[1]
    assert b"\xe6\x9d\x8e\xe5\x9b\x9b" not in up.read_bytes()  # 李四 is nowhere in clear
    first = import_up(pair.hub_store, pair.hub, up, now_china)
    again = import_up(pair.hub_store, pair.hub, up, now_china)  # importing twice is harmless
    assert first["counts"]["created"] == out["rows"] and again["counts"]["created"] == 0
    assert counts(pair)[0] == counts(pair)[1]
    down = tmp_path / "down.bundle"
    export_down(pair.hub_store, pair.hub, down, "test-street", now_china)
    got = import_down(pair.street_store, pair.street, down, now_china)
    assert got["applied"] >= 1 and got["acked_through_seq"] == out["to_seq"] and got["errors"] == []
    assert import_down(pair.street_store, pair.street, down, now_china)["applied"] == 0
    assert pair.street_store.query("SELECT version FROM calendar_versions") == [{"version": "usb-v1"}]
    assert pair.street_store.query("SELECT COUNT(*) AS n FROM sync_countersigs")[0]["n"] == 1
    # acknowledged by bundle: the next export carries only what is new
    pair.new_case()
    assert export_up(pair.street_store, pair.street, up, now_china)["rows"] == 3  # the case, its event, the calendar echo


def test_tampered_truncated_or_misaddressed_bundles_are_refused_and_nothing_is_applied(
        pair: Pair, tmp_path: Path) -> None:
    pair.new_case()
    good = tmp_path / "up.bundle"
    export_up(pair.street_store, pair.street, good, now_china)
    data = good.read_bytes()
    cases = {
        "truncated": data[: len(data) - 100],
        "cut_in_manifest": data[:40],
        "flipped": data[:-50] + bytes([data[-50] ^ 0xFF]) + data[-49:],
        "manifest_edited": data.replace(b'"to":"test-hub"', b'"to":"test-hux"', 1),
        "not_a_bundle": b"hello",
    }
    expected = {"truncated": "截断", "cut_in_manifest": "截断", "flipped": "摘要不符", "manifest_edited": "签名无效",
                "not_a_bundle": "不是 streetnode"}
    for name, content in cases.items():
        bad = tmp_path / f"{name}.bundle"
        bad.write_bytes(content)
        with pytest.raises(BundleError) as err:
            import_up(pair.hub_store, pair.hub, bad, now_china)
        assert expected[name] in err.value.message_zh, name
        assert err.value.message_en
    assert counts(pair)[0] == 0
    with pytest.raises(BundleError):  # a street cannot import its own up-bundle
        import_down(pair.street_store, pair.street, good, now_china)


def test_bundle_cli_refuses_a_truncated_file_in_chinese_and_english(pair: Pair, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from server.cli import main

    pair.new_case()
    good = tmp_path / "up.bundle"
    export_up(pair.street_store, pair.street, good, now_china)
    cut = tmp_path / "cut.bundle"
    cut.write_bytes(good.read_bytes()[:-10])
    pair.hub_client.__exit__(None, None, None)  # the hub's CLI opens its own store
    result = CliRunner().invoke(main, ["--data-dir", str(pair.hub.data_dir), "bundle", "import", str(cut)])
    assert result.exit_code == 1
    assert "导入被拒绝，未应用任何数据" in result.output and "Import refused, nothing applied" in result.output
    result = CliRunner().invoke(main, ["--data-dir", str(pair.hub.data_dir), "bundle", "import", str(good)])
    assert result.exit_code == 0, result.output
