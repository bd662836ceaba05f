"""The PWA's static files without a browser: the service worker stamp is current, every module the
app imports is precached, nothing loads from another origin (no CDN), vendored files are listed."""

from __future__ import annotations

import json
import re

from tests.browser import stamp_pwa

PWA = stamp_pwa.PWA


def test_service_worker_precache_stamp_is_current() -> None:
    assert stamp_pwa.is_current(), "run: python -m tests.browser.stamp_pwa"


def test_every_static_import_is_precached() -> None:
    sw = (PWA / "sw.js").read_text(encoding="utf-8")
    precached = set(re.findall(r"^  '([^']+)',$", sw, re.M))
    for module in (PWA / "js").rglob("*.js"):
        text = module.read_text(encoding="utf-8")
        for spec in re.findall(r"from '(\.[^']+)'", text) + re.findall(r"import\('(\.[^']+)'\)", text):
            target = (module.parent / spec).resolve().relative_to(PWA.resolve()).as_posix()
            assert "/" + target in precached, f"{module.name} imports {spec}, which is not precached"


def test_no_file_loads_from_another_origin() -> None:
    for path in PWA.rglob("*"):
        if path.suffix in (".js", ".mjs", ".html", ".css", ".webmanifest"):
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"(src|href)=\"https?://", text), path
            assert not re.search(r"import[^;]*'https?://", text), path
            assert "cdn." not in text.lower() or path.suffix == ".mjs", path


def test_manifest_is_zh_cn_with_icons_that_exist() -> None:
    manifest = json.loads((PWA / "manifest.webmanifest").read_text(encoding="utf-8"))
    assert manifest["lang"] == "zh-CN"
    for icon in manifest["icons"]:
        assert (PWA / icon["src"].lstrip("/")).exists(), icon["src"]


def test_vendored_files_are_documented() -> None:
    readme = (PWA / "vendor" / "README.md").read_text(encoding="utf-8")
    for path in (PWA / "vendor").iterdir():
        if path.name != "README.md":
            assert path.name in readme, path.name


def test_form_schemas_in_the_pwa_match_the_exported_ones() -> None:
    for name in stamp_pwa.PWA_SCHEMAS:
        exported = stamp_pwa.SCHEMAS_SRC / name
        if exported.exists():
            assert (PWA / "schemas" / name).read_bytes() == exported.read_bytes(), f"{name}: run the stamp"
