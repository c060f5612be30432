"""HTTP plumbing shared by the provider clients: the pooled client and error mapping.

Every vendor failure leaves here as a :class:`ProviderError`. The rule is the
same for every provider: transport failures, 408, 429 and 5xx are transient
(retried with backoff, honouring ``Retry-After``); other 4xx are permanent.

Workers send through :class:`LeanProviderClient` (our own keep-alive HTTP/1.1
client over httptools, :mod:`mensajero.providers.lean_http`), or, with
``provider_http_client = "aiohttp"``, through :class:`PooledProviderClient`
(aiohttp's pool: ~0.2 ms of CPU per request, where httpx's pool costs ~2 ms).
The provider clients also accept an ``httpx.AsyncClient``: tests and tools hand
them one over a fake provider's ASGI app. All answer with the same small
response surface (:class:`ProviderResponse`).
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self

import aiohttp
import httpx
import orjson

from mensajero.providers.base import ProviderError
from mensajero.providers.lean_http import (
    ConnectFailed,
    LeanHTTPClient,
    LeanResponse,
    ResponseFailed,
    form_urlencode,
)
from mensajero.settings import ProviderHTTPClientName, Settings

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


class ProviderResponse(Protocol):
    """What the provider clients read of an answer (``httpx.Response`` has it too)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def reason_phrase(self) -> str: ...

    @property
    def is_success(self) -> bool: ...

    def json(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class PooledResponse:
    status_code: int
    headers: Mapping[str, str]  # case-insensitive (aiohttp's CIMultiDictProxy)
    reason_phrase: str
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def json(self) -> Any:
        return orjson.loads(self.content)  # orjson.JSONDecodeError is a ValueError


class _ClosedOnExit:
    """``async with client:`` closes its connections at the end."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class PooledProviderClient(_ClosedOnExit):
    """The one HTTP client a worker process uses for every provider call.

    One aiohttp pool of ``provider_max_connections`` keep-alive connections.
    Timeouts: ``provider_connect_timeout_seconds`` to open a connection,
    ``provider_timeout_seconds`` to get one from the pool (connecting included)
    and for each read of the answer. The session is made on first use, inside
    the event loop that runs it.
    """

    def __init__(self, settings: Settings) -> None:
        self.max_connections = max(settings.provider_max_connections, 1)
        self.timeout = aiohttp.ClientTimeout(
            total=None,
            connect=settings.provider_timeout_seconds,
            sock_connect=settings.provider_connect_timeout_seconds,
            sock_read=settings.provider_timeout_seconds,
        )
        self.headers = {"User-Agent": USER_AGENT}
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=30.0),
                timeout=self.timeout,
                headers=self.headers,
                json_serialize=lambda value: orjson.dumps(value).decode(),
            )
        return self._session

    async def post(
        self,
        url: str,
        *,
        provider: str,
        data: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        idempotent: bool = False,  # aiohttp never retries a POST: nothing to decide
    ) -> PooledResponse:
        """POST; transport failures become transient :class:`ProviderError`."""
        extra: dict[str, str] = {}
        if auth is not None:
            extra["Authorization"] = aiohttp.encode_basic_auth(*auth)
        body: bytes | None = None
        if data is not None:
            # Encoded here: aiohttp's FormData machinery cost a sixth of a worker's
            # CPU per Twilio send for what is one urlencode.
            body = form_urlencode(data)
            extra["Content-Type"] = "application/x-www-form-urlencoded"
        if extra:
            headers = {**(headers or {}), **extra}
        try:
            async with self._open().post(
                url, data=body, json=json, headers=headers, allow_redirects=False
            ) as response:
                content = await response.read()
                return PooledResponse(
                    response.status, response.headers, response.reason or "", content
                )
        except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError) as e:
            # No connection was made: the request never left.
            raise _transport_error(provider, e, ambiguous=False) from e
        except (aiohttp.ClientError, TimeoutError) as e:
            # Sent, or maybe sent, and then the answer never came whole.
            raise _transport_error(provider, e, ambiguous=True) from e

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> Self:
        self._open()
        return self


class LeanProviderClient(_ClosedOnExit):
    """The worker's default client: :class:`~mensajero.providers.lean_http.LeanHTTPClient`.

    ~4x less CPU per request than aiohttp's (the dispatch worker's largest cost).
    Timeouts: ``provider_connect_timeout_seconds`` to open a connection,
    ``provider_timeout_seconds`` to get one from the pool (connecting included)
    and for the whole answer once the request is written.
    """

    def __init__(self, settings: Settings) -> None:
        self._http = LeanHTTPClient(
            max_connections=settings.provider_max_connections,
            connect_timeout=settings.provider_connect_timeout_seconds,
            timeout=settings.provider_timeout_seconds,
            keepalive_seconds=30.0,
            user_agent=USER_AGENT,
        )

    async def post(
        self,
        url: str,
        *,
        provider: str,
        data: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        idempotent: bool = False,
    ) -> LeanResponse:
        """POST; transport failures become transient :class:`ProviderError`.

        ``idempotent``: the provider deduplicates this call (an idempotency key),
        so it may be sent again after a reused connection dropped it unanswered.
        """
        content_type: str | None
        if data is not None:
            body = form_urlencode(data)
            content_type = "application/x-www-form-urlencoded"
        elif json is not None:
            body = orjson.dumps(json)
            content_type = "application/json"
        else:
            body, content_type = b"", None
        try:
            return await self._http.post(
                url,
                body=body,
                content_type=content_type,
                headers=headers,
                auth=auth,
                idempotent=idempotent,
            )
        except ConnectFailed as e:
            # No connection was made: the request never left.
            raise _transport_error(provider, e, ambiguous=False) from e
        except (ResponseFailed, TimeoutError, OSError) as e:
            # Sent, or maybe sent, and then the answer never came whole.
            raise _transport_error(provider, e, ambiguous=True) from e

    async def aclose(self) -> None:
        await self._http.aclose()


def _transport_error(
    provider: str, error: BaseException, *, ambiguous: bool, timeout: bool | None = None
) -> ProviderError:
    """A transport failure of any client as a transient :class:`ProviderError`.

    ``timeout`` defaults to whether ``error`` is a :class:`TimeoutError` (httpx's
    timeouts are not).
    """
    if timeout if timeout is not None else isinstance(error, TimeoutError):
        return ProviderError(
            "timeout",
            f"{provider} did not answer in time ({type(error).__name__})",
            transient=True,
            provider=provider,
            ambiguous=ambiguous,
        )
    return ProviderError(
        "connection_error",
        f"could not reach {provider}: {type(error).__name__}: {error}",
        transient=True,
        provider=provider,
        ambiguous=ambiguous,
    )


# What a provider client sends through: the workers' pool, or any httpx client.
ProviderHTTP = LeanProviderClient | PooledProviderClient | httpx.AsyncClient


def create_provider_http_client(settings: Settings) -> LeanProviderClient | PooledProviderClient:
    """The worker's client (built in ``on_startup``, closed in ``on_shutdown``)."""
    if settings.provider_http_client == ProviderHTTPClientName.AIOHTTP:
        return PooledProviderClient(settings)
    return LeanProviderClient(settings)


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
    http: ProviderHTTP,
    provider: str,
    url: str,
    **kwargs: Any,
) -> ProviderResponse:
    """POST and turn transport failures into transient :class:`ProviderError`.

    ``idempotent=True``: the provider deduplicates the call by an idempotency
    key (see :meth:`LeanProviderClient.post`).
    """
    if not isinstance(http, httpx.AsyncClient):
        return await http.post(url, provider=provider, **kwargs)
    kwargs.pop("idempotent", None)
    try:
        return await http.post(url, **kwargs)
    except httpx.TransportError as e:
        raise _transport_error(
            provider,
            e,
            ambiguous=isinstance(e, _AMBIGUOUS_TRANSPORT_ERRORS),
            timeout=isinstance(e, httpx.TimeoutException),
        ) from e


def response_json(response: ProviderResponse) -> dict[str, Any]:
    """The response body as a JSON object, or ``{}`` when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {"data": body}


def http_error(
    provider: str,
    response: ProviderResponse,
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
