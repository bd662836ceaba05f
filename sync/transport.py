"""The street node's HTTP client for the hub: signed requests, verified replies.

It accepts any ``httpx2.Client`` (STYLE.md, after HTTPX): tests pass Starlette's ``TestClient`` for an
in-process hub, production builds a plain client on ``hub_url``. Every reply is verified against the
pinned hub key and must name the sha256 of the request it answers.

Exceptions::

    HubProblem
    ├── HubUnreachable   connection refused or cut, timeout, 5xx: retry later, nothing is lost
    └── HubRefused       the hub answered 4xx (bad signature, unknown node …), or its reply does not verify
"""

from __future__ import annotations

from typing import Any

import httpx2

from server.domain.canonical import sha256_hex
from server.domain.crypto import SigningKey
from sync import wire
from sync.errors import SyncError

__all__ = ["HubClient", "HubProblem", "HubRefused", "HubUnreachable"]


class HubProblem(SyncError):
    def __init__(self, message_zh: str, message_en: str, code: str = "") -> None:
        super().__init__(message_zh, message_en, code=code)


class HubUnreachable(HubProblem):
    pass


class HubRefused(HubProblem):
    pass


class HubClient:
    def __init__(self, base_url: str, key: SigningKey, node_id: str, hub_public: bytes, *,
                 client: httpx2.Client | None = None, timeout: float = 60.0, codec: str = wire.DEFAULT_CODEC):
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.node_id = node_id
        self.hub_public = hub_public
        self.codec = codec
        self._own = client is None
        self._client = client or httpx2.Client(timeout=timeout)

    def close(self) -> None:
        if self._own:
            self._client.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, path: str, purpose: str, obj: dict[str, Any]) -> dict[str, Any]:
        body, headers = wire.sign_message(self.key, self.node_id, purpose, obj, self.codec)
        url = path if self.base_url == "" else self.base_url + path
        try:
            resp = self._client.post(url, content=body, headers=headers)
        except httpx2.HTTPError as exc:  # refused, reset mid-request, timeout
            raise HubUnreachable("无法连接区级枢纽", f"hub unreachable: {type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 500:
            raise HubUnreachable("区级枢纽暂时无法处理", f"hub answered {resp.status_code}")
        if resp.status_code >= 400:
            try:
                err = resp.json()
                message, code = str(err.get("error", resp.text)), str(err.get("code", ""))
            except ValueError:
                message, code = resp.text[:200], ""
            raise HubRefused(f"区级枢纽拒绝：{message}", f"hub refused ({resp.status_code} {code})", code)
        try:
            reply = wire.open_message(resp.content, resp.headers, self.hub_public, "reply")
        except wire.WireError as exc:
            raise HubRefused(f"区级枢纽的答复无法验证：{exc.message_zh}", f"reply rejected: {exc.message_en}",
                             "bad_reply") from exc
        if not isinstance(reply, dict) or reply.get("request_sha256") != sha256_hex(body):
            raise HubRefused("区级枢纽的答复与请求不符", "reply is not bound to this request", "bad_reply")
        return reply
