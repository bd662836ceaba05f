"""The grid forms' exported JSON Schemas are current, and they say what the PWA needs to know."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.grid import TRANSITION_PAYLOADS, export_json_schemas, form_schemas
from server.domain.grid import GRID_INCIDENT

ROOT = Path(__file__).resolve().parents[2]


def test_exported_grid_schemas_are_current(tmp_path: Path) -> None:
    written = export_json_schemas(tmp_path)
    assert {p.name for p in written} == {"incident_report.json", "patrol_log.json", "grid_event_payloads.json"}
    for path in written:
        shipped = json.loads((ROOT / "schemas" / "json" / path.name).read_text(encoding="utf-8"))
        assert shipped == json.loads(path.read_text(encoding="utf-8")), (
            f"schemas/json/{path.name} is stale: run python -m schemas.grid")


def test_incident_report_schema_requires_category_location_description_and_names_the_photos() -> None:
    schema = form_schemas()["incident_report"]
    assert set(schema["required"]) == {"category_code", "location", "description"}
    assert schema["additionalProperties"] is False
    assert schema["x-attachments"]["min_images"] == 1


def test_every_client_transition_of_the_kind_has_a_payload_schema() -> None:
    client_transitions = {name for name, t in GRID_INCIDENT.transitions.items() if name != "report"}
    assert client_transitions == set(TRANSITION_PAYLOADS)
    assert set(form_schemas()["grid_event_payloads"]["transitions"]) == set(TRANSITION_PAYLOADS)
