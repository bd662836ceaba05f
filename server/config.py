"""One Settings object for the node, read from a TOML file and ``STREETNODE_*`` variables.

Precedence (highest first): explicit overrides (CLI flags) > environment > TOML file > defaults.
Every field is documented in ``ops/node.example.toml``; a test keeps that file complete.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STREETNODE_", extra="forbid", validate_default=True)

    role: Literal["street", "district"] = Field("street", description="street node or district hub")
    node_id: str = Field("street-node", min_length=1, description="stable id of this node")
    org_unit: str = Field("", description="org unit code this node serves (street code, or district code)")
    data_dir: Path = Field(Path("var/node"), description="directory for the database, blobs and keys")
    keys_dir: Path | None = Field(None, description="key directory; default <data_dir>/keys")
    hub_url: str | None = Field(None, description="district hub base URL (street nodes only)")
    hub_public_key: str | None = Field(None, description="hub Ed25519 public key, base64url (pinned)")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    sync_time: str = Field("02:00", pattern=r"^\d{2}:\d{2}$", description="nightly sync time HH:MM")
    sync_timezone: str = "Asia/Shanghai"
    sync_enabled: bool = Field(True, description="run the nightly sync job in `serve`")
    max_json_bytes: int = Field(1024 * 1024, ge=1024, description="largest JSON body accepted")
    max_attachment_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    token_ttl_minutes: int = Field(12 * 60, ge=1, description="bearer token lifetime (one shift)")
    login_max_failures: int = Field(5, ge=1)
    lockout_minutes: int = Field(15, ge=1)
    track_rate_per_minute: int = Field(10, ge=1, description="resident tracking look-ups per client per minute")
    tls_cert: Path | None = Field(None, description="HTTPS certificate (PEM) for the LAN; see `streetnode tls`")
    tls_key: Path | None = Field(None, description="private key of tls_cert")
    ogi_profile: Literal["OGI2008", "OGI2019"] = "OGI2019"
    access_log: bool = Field(False, description="uvicorn access log (halves small-request throughput)")

    @property
    def db_path(self) -> Path:
        return self.data_dir / "streetnode.db"

    @property
    def key_dir(self) -> Path:
        return self.keys_dir or self.data_dir / "keys"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings: TOML values are defaults that the environment and ``overrides`` beat."""
    import os

    file_values: dict[str, Any] = {}
    if config_file is not None:
        with open(config_file, "rb") as fh:
            file_values = tomllib.load(fh)
    env_keys = {k[len("STREETNODE_") :].lower() for k in os.environ if k.startswith("STREETNODE_")}
    values = {k: v for k, v in file_values.items() if k not in env_keys}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
