"""Stamp the PWA's service worker: copy the exported JSON Schemas into ``pwa/schemas/``, then write
the precache list and a content-hash version into ``pwa/sw.js`` (pwa.md §1.3: versioned by content).

Run ``python -m tests.browser.stamp_pwa`` after changing any file under ``pwa/``;
``tests/browser/test_pwa_files.py`` fails while the stamp is stale. No Node, no bundler.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PWA = ROOT / "pwa"
SCHEMAS_SRC = ROOT / "schemas" / "json"
SCHEMAS_DST = PWA / "schemas"
SW = PWA / "sw.js"
# Form schemas the PWA renders offline (DESIGN §8: forms are driven by the exported JSON Schemas).
# grid_event_payloads.json: each grid transition's payload, for nodes that do not send the schemas yet.
PWA_SCHEMAS = ("service_application.json", "incident_report.json", "patrol_log.json", "grid_event_payloads.json")
# Reference data the app ships as an offline fallback until it has reached the node once.
# tianhe_org.json: the district's departments a dispatcher may send a grid case to (not in the
# dispatcher's own scope on the node, so not in /api/v1/org/units).
PWA_DATA = (ROOT / "server" / "data" / "incident_categories.json", ROOT / "server" / "data" / "service_items.json",
            ROOT / "server" / "data" / "tianhe_org.json")
_BLOCK = re.compile(r"(// BEGIN PRECACHE[^\n]*\n)(.*?)(// END PRECACHE)", re.S)
_SKIP_SUFFIXES = (".md",)


def shell_files() -> list[Path]:
    return sorted(
        p for p in PWA.rglob("*")
        if p.is_file() and p != SW and not p.name.endswith(_SKIP_SUFFIXES) and not p.name.startswith(".")
    )


def _exported() -> Path:
    """schemas/json/, or, where a form's file is not exported there yet, a fresh export of the models."""
    if all((SCHEMAS_SRC / n).exists() for n in PWA_SCHEMAS):
        return SCHEMAS_SRC
    tmp = Path(tempfile.mkdtemp(prefix="pwa-schemas-"))
    for module in ("schemas.hall", "schemas.grid"):
        try:
            importlib.import_module(module).export_json_schemas(tmp)
        except (ImportError, AttributeError):
            continue
    for name in PWA_SCHEMAS:
        if (SCHEMAS_SRC / name).exists():
            shutil.copyfile(SCHEMAS_SRC / name, tmp / name)
    return tmp


def copy_schemas() -> list[str]:
    """Copy the form schemas that exist; the PWA falls back to built-in forms for missing ones."""
    copied = []
    SCHEMAS_DST.mkdir(exist_ok=True)
    source = _exported()
    for name in PWA_SCHEMAS:
        src = source / name
        if src.exists():
            dst = SCHEMAS_DST / name
            if not dst.exists() or dst.read_bytes() != src.read_bytes():
                shutil.copyfile(src, dst)
            copied.append(name)
    (PWA / "data").mkdir(exist_ok=True)
    for src in PWA_DATA:
        dst = PWA / "data" / src.name
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            shutil.copyfile(src, dst)
    index = json.dumps({"schemas": copied}, ensure_ascii=False, indent=1) + "\n"
    idx = SCHEMAS_DST / "index.json"
    if not idx.exists() or idx.read_text(encoding="utf-8") != index:
        idx.write_text(index, encoding="utf-8")
    return copied


def stamped_block() -> str:
    files = shell_files()
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(PWA).as_posix().encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    urls = ["/" + p.relative_to(PWA).as_posix() for p in files]
    lines = [f"const VERSION = '{digest.hexdigest()[:16]}';", "const PRECACHE = ["]
    lines += [f"  '{u}'," for u in urls]
    lines += ["];", ""]
    return "\n".join(lines)


def render_sw() -> str:
    text = SW.read_text(encoding="utf-8")
    match = _BLOCK.search(text)
    if match is None:
        raise SystemExit("pwa/sw.js has no BEGIN/END PRECACHE block")
    return text[: match.start(2)] + stamped_block() + text[match.end(2):]


def is_current() -> bool:
    return SW.read_text(encoding="utf-8") == render_sw()


def main() -> int:
    copy_schemas()
    new = render_sw()
    if SW.read_text(encoding="utf-8") != new:
        SW.write_text(new, encoding="utf-8")
        print("pwa/sw.js stamped")
    else:
        print("pwa/sw.js already current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
