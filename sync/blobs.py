"""Content-addressed attachments with resumable upload (sync.md §4.2; DESIGN §4).

A blob's name is its sha256. Bytes arrive in one ``PUT`` or in ``Content-Range`` chunks and are
appended to ``<blob_dir>/tmp/<sha256>.part``; a dropped connection keeps what arrived, and
``HEAD`` reports it as ``Upload-Offset`` so the tablet continues where it stopped (the
enketo-express#776 lesson: never half-keep a submission because its second image failed). Only
when the last byte is in is the file hashed, its type checked against its first bytes, and renamed
into ``<blob_dir>/<sha[:2]>/<sha256>``; a final file therefore always matches its name.

The file system holds bytes; the ``blobs`` table records who uploaded what (for scoped reads).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from server.errors import BadRequest, Conflict, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

__all__ = [
    "ALLOWED_MIME",
    "BlobStore",
    "ChunkRange",
    "parse_content_range",
]

# Photos (the PWA re-encodes them as JPEG without EXIF) and scanned materials.
ALLOWED_MIME: dict[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/pdf": (b"%PDF-",),
}
# How each type ends: a file whose head says JPEG but whose body is markup (an SVG, an HTML page with
# script) does not end like a JPEG. PDF writers may add a few bytes after %%EOF; PNG ends exactly.
_TRAILERS: dict[str, tuple[bytes, int]] = {
    "image/jpeg": (b"\xff\xd9", 2),
    "image/png": (b"IEND\xaeB`\x82", 8),
    "application/pdf": (b"%%EOF", 1024),
}
_MARKUP = (b"<svg", b"<script", b"<html", b"<!doctype html", b"<?xml")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


@dataclass(frozen=True)
class ChunkRange:
    start: int
    end: int  # inclusive, as in HTTP
    total: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_content_range(header: str | None, body_length: int | None, limit: int) -> ChunkRange | None:
    """``bytes start-end/total`` → ChunkRange; None when absent (a whole-file PUT)."""
    if header is None:
        return None
    match = _CONTENT_RANGE.match(header.strip())
    if match is None:
        raise BadRequest("Content-Range 格式应为 bytes 起-止/总长", field="content-range")
    start, end, total = (int(g) for g in match.groups())
    if total > limit:
        raise PayloadTooLarge(f"附件超过上限 {limit} 字节", field="content-range")
    if start > end or end >= total:
        raise BadRequest("Content-Range 的起止位置无效", field="content-range")
    if body_length is not None and body_length != end - start + 1:
        raise BadRequest("请求体长度与 Content-Range 不符", field="content-range")
    return ChunkRange(start, end, total)


def check_sha256(sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise ValidationFailed("附件标识须为 64 位小写十六进制 sha256", field="sha256")
    return sha256


def check_mime(mime: str | None) -> str:
    base = (mime or "").split(";")[0].strip().lower()
    if base not in ALLOWED_MIME:
        allowed = "、".join(ALLOWED_MIME)
        raise UnsupportedMediaType(f"附件类型须为 {allowed}", field="content-type")
    return base


class BlobStore:
    """Blob files under ``root`` (the node's ``blob_dir``); partial uploads under ``root/tmp``."""

    def __init__(self, root: Path, max_bytes: int):
        self.root = root
        self.tmp = root / "tmp"
        self.max_bytes = max_bytes

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def part_path(self, sha256: str) -> Path:
        return self.tmp / f"{sha256}.part"

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def missing(self, sha256s: list[str]) -> list[str]:
        return [s for s in sha256s if not self.has(s)]

    def offset(self, sha256: str) -> int:
        """Bytes of a partial upload kept so far (0 when none)."""
        try:
            return self.part_path(sha256).stat().st_size
        except FileNotFoundError:
            return 0

    def write_chunk(self, sha256: str, start: int, data: bytes) -> int:
        """Write ``data`` at ``start`` of the partial file; returns the new offset.

        ``start`` may repeat bytes already kept (a resent chunk) but never skip ahead: a hole would
        make the file's hash fail only at the very end, after the tablet has sent everything.
        """
        have = self.offset(sha256)
        if start > have:
            raise Conflict(f"上传位置不连续：节点已收到 {have} 字节", field="content-range")
        if start + len(data) > self.max_bytes:
            raise PayloadTooLarge(f"附件超过上限 {self.max_bytes} 字节", field="body")
        self.tmp.mkdir(parents=True, exist_ok=True)
        part = self.part_path(sha256)
        fd = os.open(part, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, start)
            os.lseek(fd, start, os.SEEK_SET)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)  # a kept offset must survive a power cut, or resuming would leave a hole
        finally:
            os.close(fd)
        return start + len(data)

    def finish(self, sha256: str, mime: str) -> int:
        """Verify the complete partial file and move it into place; returns its size.

        A hash mismatch discards the partial file (the tablet must send it again); a file whose first
        bytes or whose end do not match its declared type, or an image with markup behind its header,
        is refused the same way.
        """
        part = self.part_path(sha256)
        digest = hashlib.sha256()
        size = 0
        tail = b""
        with open(part, "rb") as fh:
            head = fh.read(4096)
            fh.seek(0)
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
                tail = (tail + block)[-1024:]
        if digest.hexdigest() != sha256:
            part.unlink(missing_ok=True)
            raise ValidationFailed("附件内容与其 sha256 不符，请重新上传", field="sha256")
        trailer, window = _TRAILERS[mime]
        # markup right behind an image header is an SVG or a page dressed as a photo (binary PDF text may
        # legitimately contain such words, so only images are checked)
        markup = mime.startswith("image/") and any(m in head.lower() for m in _MARKUP)
        if not any(head.startswith(magic) for magic in ALLOWED_MIME[mime]) or markup or trailer not in tail[-window:]:
            part.unlink(missing_ok=True)
            raise UnsupportedMediaType(f"附件内容不是声明的 {mime} 格式", field="content-type")
        target = self.path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, target)  # atomic: a final file always matches its name
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return size

