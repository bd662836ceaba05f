"""The PWA mount: static files with the headers service workers and installs need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

PWA_DIR = Path(__file__).resolve().parents[2] / "pwa"


class PWAFiles(StaticFiles):
    """``sw.js`` must never be served stale (an old worker would pin an old app), and the
    manifest must carry its registered media type."""

    def file_response(self, full_path: Any, stat_result: Any, scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        name = Path(str(full_path)).name
        if name == "sw.js" or name.endswith(".html"):
            response.headers["Cache-Control"] = "no-cache"
        if name.endswith(".webmanifest") or name == "manifest.json":
            response.headers["Content-Type"] = "application/manifest+json"
        if name == "sw.js":
            response.headers["Service-Worker-Allowed"] = "/"
        return response


def pwa_app(directory: Path = PWA_DIR) -> PWAFiles:
    return PWAFiles(directory=str(directory), html=True, check_dir=False)
