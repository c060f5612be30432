"""HTTP plumbing shared by the provider clients: the pooled client and error mapping.

Every vendor failure leaves here as a :class:`ProviderError`. The rule is the
same for every provider: transport failures, 408, 429 and 5xx are transient
(retried with backoff, honouring ``Retry-After``); other 4xx are permanent.
"""

from __future__ import annotations

import email.utils
import itertools
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from mensajero.providers.base import ProviderError
from mensajero.settings import Settings

USER_AGENT = "mensajero/0.1 (+https://github.com/mensajero)"

# Failures where the request may already have reached the provider: a retry
# without an idempotency key it honours could deliver twice.
_AMBIGUOUS_TRANSPORT_ERRORS = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


# Connections per pool shard. httpcore's pool does work proportional to its
# size on every request: measured against the fake Twilio at 128 in flight,
# one pool of 128 costs 8.2 ms of CPU per request, 16 pools of 8 cost 2.4 ms
# (3.5x the throughput from the same core).
CONNECTIONS_PER_SHARD = 8


class ShardedTransport(httpx.AsyncBaseTransport):
    """Spreads requests round-robin over several small connection pools."""

    def __init__(self, shards: list[httpx.AsyncHTTPTransport]) -> None:
        if not shards:
            raise ValueError("at least one shard")
        self.shards = shards
        self._next = itertools.cycle(shards)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await next(self._next).handle_async_request(request)

    async def aclose(self) -> None:
        for shard in self.shards:
            await shard.aclose()


def create_provider_http_client(settings: Settings) -> httpx.AsyncClient:
    """The one client a worker process uses for every provider call.

    Built in the worker's ``on_startup`` and closed in ``on_shutdown``; its
    ``provider_max_connections`` sockets are split into pools of
    :data:`CONNECTIONS_PER_SHARD` so that jobs don't queue for a socket and the
    pool bookkeeping stays cheap.
    """
    max_connections = max(settings.provider_max_connections, 1)
    shard_count = math.ceil(max_connections / CONNECTIONS_PER_SHARD)
    per_shard = math.ceil(max_connections / shard_count)
    limits = httpx.Limits(
        max_connections=per_shard, max_keepalive_connections=per_shard, keepalive_expiry=30.0
    )
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.provider_timeout_seconds,
            connect=settings.provider_connect_timeout_seconds,
            # Waiting for a free connection counts against the same budget.
            pool=settings.provider_timeout_seconds,
        ),
        transport=ShardedTransport(
            [httpx.AsyncHTTPTransport(limits=limits) for _ in range(shard_count)]
        ),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds: either delta-seconds or an HTTP date (RFC 9110)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(seconds, 0.0)


def is_transient_status(status_code: int) -> bool:
    return status_code in (408, 425, 429) or status_code >= 500


async def post(
    http: httpx.AsyncClient,
    provider: str,
    url: str,
    **kwargs: Any,
) -> httpx.Response:
    """POST and turn transport failures into transient :class:`ProviderError`."""
    try:
        return await http.post(url, **kwargs)
    except httpx.TimeoutException as e:
        raise ProviderError(
            "timeout",
            f"{provider} did not answer in time ({type(e).__name__})",
            transient=True,
            provider=provider,
            ambiguous=isinstance(e, _AMBIGUOUS_TRANSPORT_ERRORS),
        ) from e
    except httpx.TransportError as e:
        raise ProviderError(
            "connection_error",
            f"could not reach {provider}: {type(e).__name__}: {e}",
            transient=True,
            provider=provider,
            ambiguous=isinstance(e, _AMBIGUOUS_TRANSPORT_ERRORS),
        ) from e


def response_json(response: httpx.Response) -> dict[str, Any]:
    """The response body as a JSON object, or ``{}`` when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {"data": body}


def http_error(
    provider: str,
    response: httpx.Response,
    *,
    code: str | None,
    message: str | None,
    transient: bool | None = None,
) -> ProviderError:
    """A :class:`ProviderError` for a non-2xx answer, classified by status code."""
    status = response.status_code
    if transient is None:
        transient = is_transient_status(status)
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if transient else None
    return ProviderError(
        code or f"http_{status}",
        message or response.reason_phrase or f"HTTP {status}",
        transient=transient,
        retry_after=retry_after,
        provider=provider,
        status_code=status,
    )


def first(params: Mapping[str, Any], *names: str) -> str | None:
    """The first non-empty value among ``names`` (providers rename fields over time)."""
    for name in names:
        value = params.get(name)
        if value not in (None, ""):
            return str(value)
    return None
