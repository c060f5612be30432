"""Outbound webhook jobs: ``webhooks.deliver`` (one attempt of one delivery) and the reconciler.

A delivery's attempt is claimed and committed before the request goes out (a
second run of the same job finds the attempt taken and sends nothing), the
request is made outside any transaction, and its result is recorded in a new
transaction that also defers the next retry. Customers' endpoints get their
own HTTP client: slow or hostile receivers must not take the sockets or the
timeouts of the provider client that sends messages.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mensajero.events import commit_and_publish
from mensajero.models import utcnow
from mensajero.repositories import webhook as repository
from mensajero.services import webhook as webhook_service
from mensajero.services.webhook import DELIVER_JOB, RECONCILE_JOB, AttemptResult
from mensajero.settings import Settings

__all__ = ["DELIVER_JOB", "RECONCILE_JOB", "deliver", "reconcile"]

logger = logging.getLogger(__name__)
USER_AGENT = "mensajero-webhooks/1"
RECONCILE_BATCH = 1000


def create_webhook_http_client(settings: Settings) -> httpx.AsyncClient:
    """Short timeouts, no redirects (a redirect could point anywhere), a bounded pool."""
    timeout = settings.webhook_timeout_seconds
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0), pool=timeout),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
    )


async def start_webhooks(ctx: dict[str, Any]) -> None:
    """``on_startup``: the webhook HTTP client, unless the caller provided one."""
    if "webhook_http" not in ctx:
        ctx["webhook_http"] = create_webhook_http_client(ctx["settings"])
        ctx["owns_webhook_http"] = True


async def stop_webhooks(ctx: dict[str, Any]) -> None:
    if ctx.pop("owns_webhook_http", False):
        await ctx.pop("webhook_http").aclose()


async def deliver(ctx: dict[str, Any], delivery_id: str, attempt_count: int = 0) -> str | None:
    """Make attempt ``attempt_count + 1`` of a delivery; returns its status afterwards."""
    settings: Settings = ctx["settings"]
    sessionmaker: async_sessionmaker[AsyncSession] = ctx["sessionmaker"]
    if "webhook_http" not in ctx:
        await start_webhooks(ctx)
    http: httpx.AsyncClient = ctx["webhook_http"]
    delivery_uuid = uuid.UUID(delivery_id)
    async with sessionmaker() as session:
        claimed = await webhook_service.claim_attempt(
            session, delivery_id=delivery_uuid, attempt_count=attempt_count, settings=settings
        )
        await session.commit()
        if claimed is None:
            return None
        delivery, endpoint = claimed
        request = webhook_service.sign_request(endpoint, delivery, now=utcnow())
    result = await _post(http, request, settings)
    async with sessionmaker() as session:
        outcome = await webhook_service.record_attempt(
            session, delivery_id=delivery_uuid, result=result, settings=settings
        )
        await commit_and_publish(session, ctx["redis"])
    if outcome is None:
        return None
    if outcome.endpoint_disabled:
        logger.warning("webhook endpoint %s disabled after sustained failure", endpoint.id)
    return outcome.status


async def _refused_destination(url: str) -> str | None:
    """Why ``url`` must not be called (an internal address), or None.

    Checked at send time because DNS can change after the endpoint was saved.
    A name is resolved here and again by the client (not pinned), so this
    stops configuration mistakes and naive SSRF, not DNS rebinding.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, parts.port or (443 if parts.scheme == "https" else 80)
            )
        except OSError as error:
            return f"cannot resolve {host}: {error}"
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if not address.is_global or address.is_multicast:
            return f"refused: {host} resolves to the non-public address {address}"
    return None


async def _post(
    http: httpx.AsyncClient, request: webhook_service.SignedRequest, settings: Settings
) -> AttemptResult:
    started = time.perf_counter()
    if not settings.webhooks_may_reach_private_addresses:
        refused = await _refused_destination(request.url)
        if refused is not None:
            return AttemptResult(None, None, refused, _elapsed_ms(started))
    limit = max(settings.webhook_response_body_limit, 0)
    try:
        async with http.stream(
            "POST", request.url, content=request.body, headers=request.headers
        ) as response:
            # Read at most the part of the body we keep: a receiver answering
            # megabytes must not cost us megabytes.
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) >= limit:
                    break
            return AttemptResult(
                response_status=response.status_code,
                response_body=bytes(body[:limit]).decode("utf-8", errors="replace"),
                error=None,
                duration_ms=_elapsed_ms(started),
            )
    except httpx.HTTPError as error:
        return AttemptResult(
            response_status=None,
            response_body=None,
            error=f"{type(error).__name__}: {error}"[:1000],
            duration_ms=_elapsed_ms(started),
        )


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


async def reconcile(ctx: dict[str, Any]) -> int:
    """Re-enqueue pending deliveries whose job was lost (a crash after commit, a dead worker).

    A delivery is overdue when its next attempt (or its claimed attempt's lease)
    is older than ``webhook_reconcile_after_seconds``; the job id names the
    attempt, so a job that still exists is not enqueued twice.
    """
    settings: Settings = ctx["settings"]
    sessionmaker: async_sessionmaker[AsyncSession] = ctx["sessionmaker"]
    before = utcnow() - timedelta(seconds=settings.webhook_reconcile_after_seconds)
    async with sessionmaker() as session:
        overdue = await repository.overdue_pending_deliveries(
            session, before=before, limit=RECONCILE_BATCH
        )
        for delivery_id, attempt_count in overdue:
            webhook_service.defer_deliver(
                session, settings, delivery_id, attempt_count=attempt_count
            )
        await commit_and_publish(session, ctx["redis"])
    return len(overdue)
