"""The base of every refusal in sync: staff and operators read Chinese, the other end's logs English.

    SyncError(message_zh, message_en, code=, field=, status=)
    ├── transport.HubProblem → HubUnreachable, HubRefused      the hub could not be reached / said no
    ├── hub.HubError                                           the hub refuses a node's message
    ├── wire.WireError → BadSignature, BadBody                 a signed body failed its checks
    ├── bundle.BundleError                                     an offline bundle must not be imported
    └── packages.PackageError → PackageRefused, ItemRefused    a down-package (or one item) is refused
"""

from __future__ import annotations


class SyncError(Exception):
    def __init__(self, message_zh: str, message_en: str = "", *, code: str = "", field: str = "",
                 status: int = 0) -> None:
        super().__init__(f"{message_en} ({message_zh})" if message_en else message_zh)
        self.message_zh = message_zh
        self.message_en = message_en
        self.code = code
        self.field = field
        self.status = status
