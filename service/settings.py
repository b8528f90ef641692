"""Configuration from the environment (prefix ``ACCELIR_``), built by factories, never at import.

``CommonSettings`` is what the gateway and the workers share (Redis, blob store, job TTLs, image
limits); ``Settings`` adds the gateway's (keys, signing, limits). ``worker.settings`` adds the
workers'. Secrets are ``SecretStr`` so they never show up in a repr or a log line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class CommonSettings(BaseSettings):
    """Settings shared by the gateway and the workers."""

    model_config = SettingsConfigDict(env_prefix="ACCELIR_", extra="ignore", frozen=True)

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("ACCELIR_REDIS_URL", "REDIS_URL", "redis_url"),
    )
    redis_socket_timeout_s: float = 5.0
    blob_backend: Literal["local", "s3"] = "local"
    blob_dir: Path = Field(
        Path(".accelir/blobs"),
        validation_alias=AliasChoices("ACCELIR_BLOB_DIR", "ACCELIR_DATA_DIR", "blob_dir"),
    )
    blob_fsync: bool = True
    s3_bucket: str | None = None
    s3_prefix: str = "accelir/"
    s3_endpoint_url: str | None = None
    job_ttl_s: int = Field(7 * 24 * 3600, ge=60)
    stream_maxlen: int = Field(100_000, ge=100)
    dead_letter_maxlen: int = Field(10_000, ge=10)
    max_pixels: int = Field(16_777_216, ge=1)  # imgproxy's MAX_SRC_RESOLUTION: 16.8 MP
    max_side: int = Field(16_384, ge=1)
    worker_heartbeat_ttl_s: float = Field(15.0, gt=0)


class Settings(CommonSettings):
    """The gateway's settings."""

    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    signing_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    signing_salts: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    signed_url_max_ttl_s: int = Field(7 * 24 * 3600, ge=1, le=7 * 24 * 3600)  # ≤ the API's maximum
    allow_unsigned_reads: bool = False  # development only: container/manifest/blocks without auth
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    rate_limit_requests: int = Field(120, ge=1)
    rate_limit_window_s: int = Field(60, ge=1)
    max_backlog: int = Field(1000, ge=1)
    redis_warm_connections: int = Field(16, ge=0, le=1024)  # opened at start, before traffic
    backlog_retry_after_s: int = Field(5, ge=1)
    request_timeout_s: float = Field(30.0, gt=0)
    body_read_timeout_s: float = Field(15.0, gt=0)
    ready_requires_workers: bool = True
    shutdown_delay_s: float = Field(0.0, ge=0)
    public_base_url: str = "http://127.0.0.1:8000"

    @field_validator("api_keys", "signing_keys", "signing_salts", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _split_commas(value)

    @model_validator(mode="after")
    def _check_signing(self) -> Settings:
        if len(self.signing_keys) != len(self.signing_salts):
            raise ValueError("ACCELIR_SIGNING_KEYS and ACCELIR_SIGNING_SALTS must pair up")
        for secret in (*self.signing_keys, *self.signing_salts):
            try:
                bytes.fromhex(secret.get_secret_value())
            except ValueError:
                raise ValueError("signing keys and salts must be hex-encoded") from None
        if self.stream_maxlen <= self.max_backlog:
            raise ValueError("ACCELIR_STREAM_MAXLEN must exceed ACCELIR_MAX_BACKLOG")
        return self

    @property
    def signing_pairs(self) -> list[tuple[bytes, bytes]]:
        """(key, salt) pairs, the first one signs, all of them verify (key rotation)."""
        return [
            (bytes.fromhex(k.get_secret_value()), bytes.fromhex(s.get_secret_value()))
            for k, s in zip(self.signing_keys, self.signing_salts, strict=True)
        ]


def get_settings(**overrides: Any) -> Settings:
    """The gateway settings from the environment, with explicit overrides (tests, tools)."""
    return Settings(**overrides)
