"""A street node restored from a backup older than what the hub acknowledged never reuses a node_seq.

The hub keeps one row per (node_id, node_seq) (DESIGN.md §6 rule 1). A restored street's change log
ends below the hub's acknowledged seq, so at the next handshake it raises its change-log floor
(``ChangeLog.raise_floor``) and its new changes arrive as new rows, not as ``seq_reused`` conflicts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from starlette.testclient import TestClient

from server.store.db import Store
from server.store.seed import new_epoch
from server.web.app import create_app
from tests.syncb.conftest import Pair, make_pair


def test_a_restored_street_sends_new_changes_after_the_hubs_acknowledged_seq(tmp_path: Path) -> None:
    hub, street = make_pair(tmp_path)
    backup = tmp_path / "street-backup.db"
    with TestClient(create_app(hub)) as hub_client:
        with Store(street.db_path) as street_store:
            pair = Pair(hub, street, hub_client, street_store)
            pair.new_case("备份前")
            street_store.backup_to(backup)
            for i in range(3):
                pair.new_case(f"备份后 {i}")
            acked = pair.sync().acked_through_seq
        for suffix in ("-wal", "-shm"):
            Path(str(street.db_path) + suffix).unlink(missing_ok=True)
        shutil.copyfile(backup, street.db_path)  # what `streetnode restore` does
        with Store(street.db_path) as street_store:
            street_store.write(lambda db: new_epoch(db, "restored in a test"))
            pair = Pair(hub, street, hub_client, street_store)
            assert street_store.query("SELECT MAX(node_seq) AS n FROM change_log")[0]["n"] < acked
            pair.sync()  # the handshake raises the floor
            fresh = pair.new_case("恢复后")
            pair.sync()
            seqs = [r["node_seq"] for r in street_store.query(
                "SELECT node_seq FROM change_log WHERE entity_id = ?", [fresh])]
        hub_store = pair.hub_store
        assert seqs and min(seqs) > acked
        assert hub_store.query("SELECT entity_id FROM hub_records WHERE entity = 'case' AND entity_id = ?", [fresh])
        assert hub_store.query("SELECT id FROM sync_conflicts WHERE kind = 'seq_reused'") == []
