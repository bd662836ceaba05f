"""Settings: TOML file, environment, overrides; the example config documents every setting."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli import main
from server.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "ops" / "node.example.toml"


def test_example_config_documents_every_setting() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"\n{name} =" in text or f"\n# {name} =" in text, f"ops/node.example.toml lacks {name}"


def test_example_config_loads_and_is_valid() -> None:
    values = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert set(values) <= set(Settings.model_fields)
    assert load_settings(EXAMPLE).node_id == values["node_id"]


def test_environment_beats_file_and_flags_beat_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "n.toml"
    cfg.write_text('port = 9001\nnode_id = "from-file"\n', encoding="utf-8")
    monkeypatch.setenv("STREETNODE_PORT", "9002")
    s = load_settings(cfg)
    assert (s.port, s.node_id) == (9002, "from-file")
    assert load_settings(cfg, port=9003).port == 9003


def test_unknown_setting_in_file_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "n.toml"
    cfg.write_text("prot = 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="prot"):
        load_settings(cfg)


def test_config_show_prints_effective_settings(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "config", "show"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["data_dir"] == str(tmp_path) and shown["role"] == "street"
