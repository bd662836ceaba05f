"""`streetnode tls` makes a CA and a certificate the real server serves HTTPS with."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx2

from tests.servers import free_port, start, stop, streetnode, wait_healthy


def test_node_serves_https_with_the_street_ca(tmp_path: Path) -> None:
    data = tmp_path / "node"
    streetnode("--data-dir", str(data), "init")
    out = streetnode("--data-dir", str(data), "tls", "--host", "127.0.0.1", "--host", "node.local").stdout
    assert "CA 证书" in out
    tls = data / "tls"
    assert (tls / "ca.key").stat().st_mode & 0o777 == 0o600
    port = free_port()
    env = {"STREETNODE_TLS_CERT": str(tls / "node.pem"), "STREETNODE_TLS_KEY": str(tls / "node-key.pem")}
    proc = start("--data-dir", str(data), "serve", "--port", str(port), env=env)
    try:
        context = ssl.create_default_context(cafile=str(tls / "ca.pem"))
        health = wait_healthy(f"https://127.0.0.1:{port}", proc, verify=context)
        assert health["ok"] is True
        plain = ssl.create_default_context()  # without the street CA the certificate is not trusted
        try:
            httpx2.get(f"https://127.0.0.1:{port}/api/v1/health", verify=plain, timeout=2.0)
            trusted = True
        except httpx2.ConnectError:
            trusted = False
        assert not trusted
    finally:
        stop(proc)
