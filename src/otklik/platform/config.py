"""Settings from `OTKLIK_*` environment variables (and a `.env` file). Secrets are never printed or logged."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dev-only-change-me"  # noqa: S105 - public on purpose; start-up warns to set OTKLIK_SECRET_KEY


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
    secret_key: SecretStr = Field(default=SecretStr(DEV_SECRET_KEY))
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
    sla_sweep_seconds: float = 15.0  # how often workers fire due SLA warnings and breaches
    # Outgoing mail of the platform itself (password resets). Unset host: email is not set up, and an admin
    # hands out one-time reset links from the users settings page instead.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_ssl: bool = False
    smtp_from: str = "otklik@localhost"
    smtp_timeout_seconds: float = 15.0
    # The address people open (https://support.example.com): links in emails use it, never the request's Host
    # header (a forged Host would otherwise send someone's reset link to the forger's site).
    public_url: str | None = None
    # Optional LLM for the assistant (issue 5): any OpenAI-compatible chat API (vLLM, Ollama, a YandexGPT or
    # GigaChat gateway). Unset base URL: answers come from the knowledge base without generated text.
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str = "default"
    llm_timeout: float = 20.0
    # GET /metrics: open when unset (bind to localhost or filter it at the proxy); set, it needs
    # `Authorization: Bearer <token>` (Prometheus: `authorization: {credentials: …}`)
    metrics_token: SecretStr | None = None
    # Vendor API bases and webhooks set by admins may not point at loopback/private/link-local hosts (SSRF)
    # unless this is on (a Bot API server on the LAN; tests with local stand-ins)
    allow_private_vendor_urls: bool = False
    # Proxies whose X-Forwarded-For / -Proto are believed (comma-separated IPs or CIDRs, e.g. 127.0.0.1 for
    # nginx on the same machine). Empty: the connection's own address is the client's (sign-in throttling
    # counts per address, and a client could otherwise pick a new one per guess).
    trusted_proxies: str = ""

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
