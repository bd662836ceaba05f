"""The node's signed receipt (办件回执) printed by a real browser: one page on A4 and on A5, and a QR
code that a phone can decode to the tracking address.

The receipt is the HTML the node serves at ``GET /receipt/{id}``; Chromium prints it to PDF exactly as
a window clerk's print dialog would (print media, the page size of the paper in the tray).
"""

from __future__ import annotations

import io
import re
from html import unescape
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader
from starlette.testclient import TestClient

from server.config import Settings
from server.store.db import Store
from tests.browser.conftest import SCREENS
from tests.conftest import Logins
from tests.hall.helpers import submitted


@pytest.fixture
def receipt_html(client: TestClient, auth: Logins, store: Store, settings: Settings) -> str:
    rec = submitted(store, settings, "clerk")
    resp = client.get(f"/receipt/{rec['case_id']}", headers=auth("clerk"))
    assert resp.status_code == 200, resp.text
    return resp.text


def _track_url(html: str) -> str:
    # the QR's text is the tracking address printed under the code for people without a camera
    found = re.search(r'data-track-url="([^"]+)"', html)
    assert found, "the receipt names the address its QR code carries"
    return unescape(found.group(1))


@pytest.mark.parametrize("paper", ["A4", "A5"])
def test_receipt_prints_on_one_page(page: Any, receipt_html: str, paper: str) -> None:
    page.set_content(receipt_html, wait_until="load")
    page.emulate_media(media="print")
    pdf = page.pdf(format=paper, prefer_css_page_size=False, print_background=True)
    pages = PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) == 1, f"the receipt runs to {len(pages)} pages on {paper}"
    text = pages[0].extract_text()
    # the legal note and the node's signature are on the one page, not lost to a second sheet
    assert "视为受理" in text and "签名" in text


def test_receipt_qr_code_decodes_to_the_tracking_address(page: Any, receipt_html: str) -> None:
    page.set_viewport_size({"width": 794, "height": 1123})  # an A4 sheet at 96 dpi
    page.set_content(receipt_html, wait_until="load")
    page.emulate_media(media="print")
    png = page.locator(".qr svg").screenshot()
    SCREENS.mkdir(parents=True, exist_ok=True)
    (SCREENS / "receipt-qr.png").write_bytes(png)
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert [d.text for d in decoded] == [_track_url(receipt_html)]
    box = page.locator(".qr svg").bounding_box()
    assert box and box["width"] >= 90, "large enough for a phone camera at arm's length (≥ 24 mm)"
