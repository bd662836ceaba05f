"""Drift and layout rules: import direction (DESIGN.md §1), CLI help, exported schemas."""

from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from server.cli import main

ROOT = Path(__file__).resolve().parents[1]

# package prefix -> our packages it must not import
FORBIDDEN = {
    "schemas": ("server", "sync"),
    "server/domain": ("server.store", "server.web", "server.cli", "server.config", "server.errors", "sync"),
    "server/store": ("server.web", "server.cli", "sync"),
    "sync": ("server.web",),
}


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_direction(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imports_of(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[package]):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, (*prefix, name))
    return out


@pytest.mark.parametrize("command", _commands(main), ids=" ".join)
def test_every_cli_command_has_help(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    cmd: click.Command = main
    for part in command:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[part]
    assert cmd.help and cmd.help.strip(), f"streetnode {' '.join(command)} lacks a usage docstring"
