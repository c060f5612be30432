"""One typed settings object for the whole process (env prefix ``MENSAJERO_``)."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class RunMode(StrEnum):
    EMBEDDED = "embedded"
    PRODUCTION = "production"


class SmsProviderName(StrEnum):
    SANDBOX = "sandbox"
    TWILIO = "twilio"


class ProviderHTTPClientName(StrEnum):
    LEAN = "lean"
    AIOHTTP = "aiohttp"


class EmailProviderName(StrEnum):
    SANDBOX = "sandbox"
    RESEND = "resend"


class WhatsAppProviderName(StrEnum):
    SANDBOX = "sandbox"
    EVOLUTION = "evolution"


DEFAULT_SQLITE_PATH = Path("mensajero.db")
MEMORY_REDIS_URL = "memory://"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MENSAJERO_", env_file=".env", extra="ignore")

    database_url: str = f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"
    redis_url: str = MEMORY_REDIS_URL
    database_echo: bool = False
    # Connections a process keeps open (it may open as many again for a burst).
    # Cover the requests a process usually has in flight: a connection opened
    # beyond the pool is closed when returned, so a pool smaller than the usual
    # concurrency opens a PostgreSQL connection (a backend process) per request.
    # Only what is used is opened: an idle process holds none.
    database_pool_size: int = 20

    # None means "decide from the mode": the embedded server (SQLite, in-process
    # Redis) migrates its database on start and runs the arq worker inside the
    # API process, since nothing outside the process can reach its queue.
    auto_migrate: bool | None = None
    embedded_worker: bool | None = None

    # Worker tuning.
    worker_concurrency: int = 64
    dispatch_batch_size: int = 500
    queue_name: str = "mensajero:queue"

    # Delivery: provider calls in flight per worker process (one pooled client),
    # retries of transient provider errors, and the reconciler. A claim (SENDING)
    # or a due QUEUED attempt untouched for ``dispatch_stale_after_seconds`` is
    # recovered: keep it above a batch's longest send and the providers' callback
    # latency (see mensajero/workers/delivery.py).
    dispatch_send_concurrency: int = 100
    dispatch_max_retries: int = 5
    dispatch_retry_base_seconds: float = 2.0
    dispatch_retry_max_seconds: float = 600.0
    dispatch_stale_after_seconds: float = 120.0
    reconcile_interval_seconds: int = 30
    reconcile_batch_limit: int = 5000

    # Pricing, in credits. One SMS segment costs ``price_sms_segment``.
    price_sms_segment: int = 1
    price_whatsapp_message: int = 1
    price_email_message: int = 1

    # The terms version members must have accepted to send.
    terms_version: str = "2026-01"

    # Providers: sandbox by default so the embedded mode needs nothing external.
    sms_provider: SmsProviderName = SmsProviderName.SANDBOX
    email_provider: EmailProviderName = EmailProviderName.SANDBOX
    whatsapp_provider: WhatsAppProviderName = WhatsAppProviderName.SANDBOX

    twilio_base_url: str = "https://api.twilio.com"
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_from_number: str = ""
    twilio_status_callback_url: str = ""
    # When set, Twilio picks the sender from this Messaging Service instead of ``From``.
    twilio_messaging_service_sid: str = ""

    resend_base_url: str = "https://api.resend.com"
    resend_api_key: SecretStr = SecretStr("")
    resend_webhook_secret: SecretStr = SecretStr("")
    resend_from_email: str = "mensajero@example.com"

    evolution_base_url: str = "http://localhost:8080"
    evolution_api_key: SecretStr = SecretStr("")
    evolution_instance: str = "mensajero"
    # The key Evolution puts in its webhooks (``apikey`` header or body field);
    # empty means the instance shares ``evolution_api_key``.
    evolution_webhook_api_key: SecretStr = SecretStr("")

    # One pooled HTTP client per worker process talks to every provider.
    provider_timeout_seconds: float = 10.0
    provider_connect_timeout_seconds: float = 5.0
    provider_max_connections: int = 100
    # "lean": our keep-alive HTTP/1.1 client (providers/lean_http.py), a quarter of
    # aiohttp's CPU per request; "aiohttp": aiohttp's pool, kept as a fallback.
    provider_http_client: ProviderHTTPClientName = ProviderHTTPClientName.LEAN

    # Sandbox behaviour (seconds between simulated transitions; failure rate 0..1).
    sandbox_delay_seconds: float = 0.5
    sandbox_failure_rate: float = 0.0
    # Simulated time the sandbox takes to accept a send.
    sandbox_latency_seconds: float = 0.0

    # Public URL of this server, used to build provider callback URLs.
    public_base_url: str = "http://127.0.0.1:8000"

    # GraphQL query limits.
    graphql_max_depth: int = 12
    graphql_max_aliases: int = 30
    graphql_max_tokens: int = 2000
    graphql_max_page_size: int = 100
    # Answer the hot list queries (messages connections of scalar fields, client and
    # campaign) from one SQL statement without the executor (mensajero/schema/compiled.py).
    graphql_compiled_lists: bool = True

    # Live subscriptions: share one execution among identical subscriptions (off only
    # for the benchmark's baseline); bounded buffers per subscriber (events / frames).
    subscription_shared_execution: bool = True
    subscription_buffer_size: int = 1_000
    subscription_outbox_limit: int = 1_000
    # Under uvicorn's websockets-sansio, write fan-out frames straight to the
    # connection instead of one ASGI send per frame (off: the ASGI path, to compare).
    subscription_direct_writes: bool = True
    # A websocket's key is checked again this often: a revoked or expired key closes its
    # live subscriptions (4403) within this plus ``auth_cache_seconds``.
    websocket_key_recheck_seconds: float = 30.0
    # `mensajero serve` and `mensajero worker`: freeze the loaded code out of the garbage
    # collector's walks and collect the young generation less often
    # (see mensajero.gc_tuning.SERVER_GC_THRESHOLDS).
    server_gc_tuning: bool = True

    # How long an authenticated key is trusted without asking the database.
    # Revocations in this process apply at once; in other processes within this.
    auth_cache_seconds: float = 5.0

    api_key_environment: str = Field(default="live", pattern="^(live|test)$")

    # Outbound webhooks: delays before each retry (seconds; the list's length is
    # the number of retries), the request timeout, the response body kept per
    # attempt, when an endpoint is disabled (that many consecutive failed
    # deliveries, or failing without a success for that long), and how long a
    # rotated secret keeps signing next to the new one.
    webhook_retry_delays_seconds: list[float] = [5, 30, 120, 600, 1800, 3600, 7200, 14400]
    webhook_timeout_seconds: float = 10.0
    webhook_response_body_limit: int = 2048
    webhook_disable_after_failures: int = 20
    webhook_disable_after_hours: float = 72.0
    webhook_secret_grace_hours: float = 24.0
    webhook_reconcile_after_seconds: float = 120.0
    # Whether webhooks may go to loopback, private, link-local or reserved
    # addresses (checked when sending). None: allowed in embedded mode (a local
    # receiver while trying things out), refused in production.
    webhook_allow_private_addresses: bool | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def uses_memory_redis(self) -> bool:
        return self.redis_url.startswith("memory://")

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    @property
    def webhooks_may_reach_private_addresses(self) -> bool:
        if self.webhook_allow_private_addresses is None:
            return self.uses_memory_redis
        return self.webhook_allow_private_addresses

    @property
    def should_run_embedded_worker(self) -> bool:
        if self.embedded_worker is None:
            return self.uses_memory_redis
        return self.embedded_worker

    @property
    def mode(self) -> RunMode:
        return RunMode.EMBEDDED if self.uses_memory_redis else RunMode.PRODUCTION


@lru_cache
def get_settings() -> Settings:
    return Settings()
