"""Blobs: content-addressed, resumable (Content-Range), verified, typed, scoped; awaiting_blobs."""

from __future__ import annotations

import hashlib

import pytest
from starlette.testclient import TestClient

from server.config import Settings
from server.store.db import Store
from tests.conftest import Logins
from tests.sync.helpers import (
    TEST_KIND,
    TestDevice,
    attachment,
    enrol_device,
    jpeg_bytes,
    post_outbox,
    upload_blob,
)

PDF = b"%PDF-1.4\n" + b"0" * 3000 + b"\n%%EOF"


@pytest.fixture
def tablet(client: TestClient, auth: Logins) -> TestDevice:
    return enrol_device(client, auth, "clerk")


def put(client: TestClient, auth: Logins, tablet: TestDevice, sha: str, data: bytes, mime: str = "image/jpeg",
        rng: str | None = None, method: str = "PUT"):  # type: ignore[no-untyped-def]
    headers = {**tablet.headers(auth(tablet.username)), "Content-Type": mime}
    if rng:
        headers["Content-Range"] = rng
    return client.request(method, f"/sync/v1/blobs/{sha}", content=data, headers=headers)


def head(client: TestClient, auth: Logins, tablet: TestDevice, sha: str):  # type: ignore[no-untyped-def]
    return client.head(f"/sync/v1/blobs/{sha}", headers=tablet.headers(auth(tablet.username)))


def test_whole_file_upload_is_stored_under_its_sha256(client: TestClient, auth: Logins, tablet: TestDevice,
                                                      settings: Settings) -> None:
    data = jpeg_bytes("a")
    sha = hashlib.sha256(data).hexdigest()
    assert head(client, auth, tablet, sha).status_code == 404
    assert head(client, auth, tablet, sha).headers["upload-offset"] == "0"
    assert upload_blob(client, auth(tablet.username), tablet, data, "image/jpeg") == sha
    assert (settings.blob_dir / sha[:2] / sha).read_bytes() == data
    found = head(client, auth, tablet, sha)
    assert found.status_code == 200 and found.headers["content-length"] == str(len(data))
    again = put(client, auth, tablet, sha, data)  # identical photos dedupe for free
    assert again.status_code == 200 and again.json()["complete"] is True


def test_an_interrupted_upload_resumes_from_its_offset(client: TestClient, auth: Logins, tablet: TestDevice,
                                                       settings: Settings) -> None:
    data = jpeg_bytes("resume", 5000)
    sha = hashlib.sha256(data).hexdigest()
    total = len(data)
    first = put(client, auth, tablet, sha, data[:2000], rng=f"bytes 0-1999/{total}")
    assert first.status_code == 202 and first.json() == {"ok": True, "sha256": sha, "complete": False,
                                                         "offset": 2000}
    # the connection dropped here; the tablet asks where to continue
    probe = head(client, auth, tablet, sha)
    assert probe.status_code == 404 and probe.headers["upload-offset"] == "2000"
    assert (settings.blob_dir / "tmp" / f"{sha}.part").stat().st_size == 2000
    skip = put(client, auth, tablet, sha, data[3000:], rng=f"bytes 3000-{total - 1}/{total}", method="PATCH")
    assert skip.status_code == 409 and skip.json()["errors"][0]["field"] == "content-range"  # no holes
    rest = put(client, auth, tablet, sha, data[2000:], rng=f"bytes 2000-{total - 1}/{total}", method="PATCH")
    assert rest.status_code == 201 and rest.json()["complete"] is True and rest.json()["size"] == total
    assert (settings.blob_dir / sha[:2] / sha).read_bytes() == data
    assert not (settings.blob_dir / "tmp" / f"{sha}.part").exists()


def test_a_resent_chunk_overwrites_instead_of_duplicating(client: TestClient, auth: Logins,
                                                          tablet: TestDevice) -> None:
    data = jpeg_bytes("again", 3000)
    sha = hashlib.sha256(data).hexdigest()
    put(client, auth, tablet, sha, data[:1500], rng="bytes 0-1499/3000")
    put(client, auth, tablet, sha, data[:1500], rng="bytes 0-1499/3000")
    done = put(client, auth, tablet, sha, data[1500:], rng="bytes 1500-2999/3000", method="PATCH")
    assert done.status_code == 201


def test_content_not_matching_its_sha256_is_refused_and_discarded(client: TestClient, auth: Logins,
                                                                  tablet: TestDevice, settings: Settings) -> None:
    data = jpeg_bytes("x")
    wrong = hashlib.sha256(b"something else").hexdigest()
    resp = put(client, auth, tablet, wrong, data)
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "sha256"
    assert not (settings.blob_dir / "tmp" / f"{wrong}.part").exists()
    assert head(client, auth, tablet, wrong).status_code == 404


@pytest.mark.parametrize("data, mime", [(jpeg_bytes("y"), "image/gif"), (jpeg_bytes("z"), "image/png"),
                                        (b"MZ\x90\x00 not a pdf", "application/pdf")],
                         ids=["type_not_allowed", "jpeg_declared_png", "exe_declared_pdf"])
def test_types_outside_jpeg_png_pdf_or_not_matching_their_bytes_are_415(
        client: TestClient, auth: Logins, tablet: TestDevice, data: bytes, mime: str) -> None:
    resp = put(client, auth, tablet, hashlib.sha256(data).hexdigest(), data, mime=mime)
    assert resp.status_code == 415 and resp.json()["errors"][0]["field"] == "content-type"


def test_size_limit_is_enforced(client: TestClient, auth: Logins, tablet: TestDevice, settings: Settings) -> None:
    limit = settings.max_attachment_bytes
    sha = "b" * 64
    resp = put(client, auth, tablet, sha, b"\xff\xd8\xff", rng=f"bytes 0-2/{limit + 1}")
    assert resp.status_code == 413
    resp = put(client, auth, tablet, sha, jpeg_bytes("big", limit + 10))
    assert resp.status_code == 413


def test_bad_sha_and_bad_content_range_are_named(client: TestClient, auth: Logins, tablet: TestDevice) -> None:
    assert put(client, auth, tablet, "ABC", b"x").json()["errors"][0]["field"] == "sha256"
    resp = put(client, auth, tablet, "c" * 64, b"\xff\xd8\xff", rng="bytes=0-2")
    assert resp.status_code == 400 and resp.json()["errors"][0]["field"] == "content-range"
    resp = put(client, auth, tablet, "c" * 64, b"\xff\xd8\xff", method="PATCH")
    assert resp.status_code == 400 and resp.json()["errors"][0]["field"] == "content-range"


def test_get_is_for_the_uploader_and_staff_who_see_a_submission_naming_it(
        client: TestClient, auth: Logins, tablet: TestDevice) -> None:
    data = PDF
    sha = upload_blob(client, auth(tablet.username), tablet, data, "application/pdf")
    mine = client.get(f"/sync/v1/blobs/{sha}", headers=auth("clerk"))
    assert mine.status_code == 200 and mine.content == data and mine.headers["content-type"] == "application/pdf"
    assert client.get(f"/sync/v1/blobs/{sha}", headers=auth("handler")).status_code == 404  # not referenced yet
    env = tablet.envelope(TEST_KIND, {"title": "附材料"}, attachments=[attachment(data, "application/pdf", "a.pdf")])
    assert post_outbox(client, auth(tablet.username), tablet, [env]).json()["results"][0]["status"] == "created"
    assert client.get(f"/sync/v1/blobs/{sha}", headers=auth("handler")).status_code == 200  # street staff: in scope
    assert client.get(f"/sync/v1/blobs/{sha}", headers=auth("grid1")).status_code == 404  # a grid: out of scope


def test_submission_awaits_its_blobs_and_completes_when_the_last_one_arrives(
        client: TestClient, auth: Logins, tablet: TestDevice, store: Store) -> None:
    photo1, photo2 = jpeg_bytes("p1"), jpeg_bytes("p2")
    env = tablet.envelope(TEST_KIND, {"title": "占道"}, attachments=[attachment(photo1), attachment(photo2)])
    upload_blob(client, auth(tablet.username), tablet, photo1, "image/jpeg")
    (result,) = post_outbox(client, auth(tablet.username), tablet, [env]).json()["results"]
    assert result["status"] == "awaiting_blobs" and result["receipt"] is None
    assert store.query("SELECT COUNT(*) AS n FROM cases WHERE id = ?", [env["submission_id"]]) == [{"n": 0}]
    (still,) = post_outbox(client, auth(tablet.username), tablet, [env]).json()["results"]
    assert still["status"] == "awaiting_blobs"
    sha2 = hashlib.sha256(photo2).hexdigest()
    half = len(photo2) // 2
    put(client, auth, tablet, sha2, photo2[:half], rng=f"bytes 0-{half - 1}/{len(photo2)}")
    last = put(client, auth, tablet, sha2, photo2[half:], rng=f"bytes {half}-{len(photo2) - 1}/{len(photo2)}",
               method="PATCH")
    (completed,) = last.json()["completed"]
    assert completed["submission_id"] == env["submission_id"] and completed["status"] == "created"
    assert store.query("SELECT COUNT(*) AS n FROM cases WHERE id = ?", [env["submission_id"]]) == [{"n": 1}]
    (retry,) = post_outbox(client, auth(tablet.username), tablet, [env]).json()["results"]
    assert retry["status"] == "duplicate" and retry["receipt"] == completed["receipt"]


def test_attachment_declared_with_a_disallowed_type_or_size_is_invalid(client: TestClient, auth: Logins,
                                                                        tablet: TestDevice,
                                                                        settings: Settings) -> None:
    gif = {"name": "a.gif", "sha256": "d" * 64, "size": 10, "mime": "image/gif"}
    huge = {"name": "a.jpg", "sha256": "e" * 64, "size": settings.max_attachment_bytes + 1, "mime": "image/jpeg"}
    results = post_outbox(client, auth(tablet.username), tablet, [
        tablet.envelope(TEST_KIND, {"title": "1"}, attachments=[gif]),
        tablet.envelope(TEST_KIND, {"title": "2"}, attachments=[huge])]).json()["results"]
    assert [(r["status"], r["errors"][0]["field"]) for r in results] == [
        ("invalid", "attachments[0].mime"), ("invalid", "attachments[0].size")]


def test_an_item_refused_once_its_blobs_arrive_leaves_only_quarantine(client: TestClient, auth: Logins,
                                                                      tablet: TestDevice, store: Store) -> None:
    photo = jpeg_bytes("late")
    env = tablet.envelope(TEST_KIND, {"title": ""}, attachments=[attachment(photo)])  # the handler refuses it
    (result,) = post_outbox(client, auth(tablet.username), tablet, [env]).json()["results"]
    assert result["status"] == "awaiting_blobs"
    resp = put(client, auth, tablet, hashlib.sha256(photo).hexdigest(), photo)
    (completed,) = resp.json()["completed"]
    assert completed["status"] == "invalid" and completed["errors"][0]["field"] == "payload.title"
    assert store.query("SELECT COUNT(*) AS n FROM submissions") == [{"n": 0}]
    assert store.query("SELECT status, reason FROM quarantine WHERE submission_id = ?", [env["submission_id"]]) == [
        {"status": "invalid", "reason": "handler_invalid"}]
    (again,) = post_outbox(client, auth(tablet.username), tablet, [env]).json()["results"]
    assert again["status"] == "invalid"


@pytest.mark.parametrize("data, mime", [
    (b"\xff\xd8\xff<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>\xff\xd9", "image/jpeg"),
    (b"\xff\xd8\xff\xe0" + b"x" * 500, "image/jpeg"),  # no end-of-image marker: not a whole JPEG
    (b"\x89PNG\r\n\x1a\n<html><body>hi</body></html>", "image/png"),
    (b"%PDF-1.4\n" + b"0" * 300, "application/pdf"),  # no %%EOF
])
def test_markup_or_a_truncated_file_behind_a_valid_header_is_refused(
        client: TestClient, auth: Logins, tablet: TestDevice, settings: Settings, data: bytes, mime: str) -> None:
    sha = hashlib.sha256(data).hexdigest()
    resp = put(client, auth, tablet, sha, data, mime)
    assert resp.status_code == 415 and resp.json()["errors"][0]["field"] == "content-type"
    assert not (settings.blob_dir / sha[:2] / sha).exists()


def test_blobs_are_served_with_nosniff_and_a_sandbox(client: TestClient, auth: Logins, tablet: TestDevice) -> None:
    data = jpeg_bytes("served")
    sha = upload_blob(client, auth(tablet.username), tablet, data, "image/jpeg")
    resp = client.get(f"/sync/v1/blobs/{sha}", headers=tablet.headers(auth(tablet.username)))
    assert resp.status_code == 200 and resp.content == data
    assert resp.headers["x-content-type-options"] == "nosniff" and "sandbox" in resp.headers["content-security-policy"]


def test_a_device_of_an_unrelated_unit_cannot_carry_an_upload(client: TestClient, auth: Logins, store: Store) -> None:
    """Blob uploads check the device against the user as the outbox does (no upload audited under a
    device the user has nothing to do with)."""
    grid_unit = store.query("SELECT org_unit FROM users WHERE username = 'grid1'")[0]["org_unit"]
    grid_tablet = enrol_device(client, auth, "grid1", org_unit=grid_unit)
    others = store.query("SELECT code FROM org_units WHERE tier = 'community' AND ? NOT LIKE path || '%' LIMIT 1",
                         [grid_tablet.org_path])
    community_tablet = enrol_device(client, auth, "grid1", org_unit=others[0]["code"])
    data = jpeg_bytes("borrowed")
    sha = hashlib.sha256(data).hexdigest()
    assert put(client, auth, community_tablet, sha, data).status_code == 403
    assert put(client, auth, grid_tablet, sha, data).status_code in (200, 201)
