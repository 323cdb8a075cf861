"""Settings from `OTKLIK_*` environment variables (and a `.env` file). Secrets are never printed or logged."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OTKLIK_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./var/otklik.db"
    redis_url: str | None = None
    # Job queue broker: "sqlite" (embedded, a file beside the database) or "redis" (needs redis_url).
    queue: str = "auto"
    queue_path: str = "./var/queue.db"
    # Run the queue consumer inside `otklik serve` (the one-machine default). Off when workers run apart.
    embedded_worker: bool = True
    data_dir: Path = Path("./var")
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: SecretStr = Field(default=SecretStr("dev-only-change-me"))
    session_ttl_hours: int = 12
    cookie_secure: bool = False
    max_request_bytes: int = 1_048_576
    max_attachment_bytes: int = 20 * 1_048_576
    allowed_attachment_types: tuple[str, ...] = (
        "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain",
        "audio/ogg", "audio/mpeg", "video/mp4", "application/zip",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    outbox_max_attempts: int = 8
    outbox_lease_seconds: int = 60
    outbox_sweep_seconds: float = 15.0

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def queue_backend(self) -> str:
        if self.queue != "auto":
            return self.queue
        return "redis" if self.redis_url else "sqlite"

    @property
    def attachments_dir(self) -> Path:
        return self.data_dir / "attachments"


@lru_cache
def get_settings() -> Settings:
    return Settings()
