"""Delivery jobs: dispatch batches to providers, apply provider events, reconcile.

``delivery.dispatch(log_ids)``
    1. Claim: the due QUEUED/SCHEDULED attempts among the ids move to SENDING in
       one transaction, committed *before* any provider is called. A job that
       runs twice (arq retry, duplicate enqueue, two workers) finds nothing left
       to claim, so it sends nothing.
    2. Send with bounded concurrency (one semaphore per worker process, sized by
       ``dispatch_send_concurrency``) through the process's one pooled HTTP
       client. The attempt id travels as the provider's idempotency key.
    3. Persist the outcomes in one transaction: SENT in batch; permanent errors
       FAILED with the provider's code and message, refunded (they never reached
       a provider), WhatsApp falling back when the organization enables it;
       transient errors back to QUEUED with ``provider_metadata.retries`` and
       ``not_before``, re-enqueued after the commit with exponential backoff that
       honours ``Retry-After``; past ``dispatch_max_retries``, FAILED and refunded.

``delivery.reconcile`` (cron, every ``reconcile_interval_seconds``, and at startup)
    * QUEUED/SCHEDULED attempts due for longer than ``dispatch_stale_after_seconds``
      lost their job (a crash between a commit and its enqueue): re-enqueued
      under job ids derived from the ids, so repeated runs do not pile up. Skipped
      while the queue holds due jobs nobody is running yet (a backlog is not a loss).
    * Claims older than ``dispatch_stale_after_seconds`` belong to a worker that
      died mid-batch (or to a send whose outcome is unknown, e.g. a read
      timeout). If a provider callback told us the provider's id meanwhile (the
      callbacks carry our attempt id), the attempt reached the provider: it is
      marked SENT. Otherwise it is given back to QUEUED and sent again with the
      same idempotency key:
        - idempotent providers (Resend, the sandbox; ``is_idempotent``) deliver it
          at most once whatever happened before the crash: exactly once;
        - providers without an idempotency key (Twilio, Evolution) would have
          told us by a callback within the window if they had accepted it, so the
          attempt is presumed never to have reached them. The residual risk, a
          duplicate, needs the provider to have accepted the message and every
          callback about it to be lost or later than the window; the alternative,
          failing the attempt, would silently drop messages that were never sent,
          which for reminders is worse. Keep the window above the provider's
          callback latency.
    Ambiguous send errors (the request may have reached the provider) on a
    provider without idempotency are left in SENDING for this same rule instead
    of being retried at once.

``delivery.apply_provider_event(event)``
    A provider event as a dict (the sandbox emits them with a delay); applied
    through the same state machine as a webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mensajero.db import transaction
from mensajero.models import Channel, ChannelConfig, MessageStatus, TimelineEventType, utcnow
from mensajero.outbox import defer_enqueue
from mensajero.providers.base import (
    ChannelProvider,
    OutboundMessage,
    ProviderAccepted,
    ProviderError,
    ProviderEvent,
    is_idempotent,
)
from mensajero.providers.http import ProviderHTTP
from mensajero.repositories import delivery as repository
from mensajero.repositories.delivery import ClaimedAttempt
from mensajero.services import delivery as delivery_service
from mensajero.settings import Settings

logger = logging.getLogger(__name__)

DISPATCH_JOB = "delivery.dispatch"
APPLY_EVENT_JOB = "delivery.apply_provider_event"
RECONCILE_JOB = "delivery.reconcile"


# --- the worker's delivery context -------------------------------------------------------------


async def start_delivery(ctx: dict[str, Any]) -> None:
    """Build the pooled HTTP client, the providers and the send semaphore (``on_startup``)."""
    from mensajero.providers.registry import build_providers, create_provider_http_client

    settings: Settings = ctx["settings"]
    redis: ArqRedis = ctx["redis"]
    # httpx (tests' and tools' clients) logs every request at INFO: thousands
    # of lines a second while dispatching, each costing more than the send.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if "provider_http" not in ctx:
        ctx["provider_http"] = create_provider_http_client(settings)
        ctx["owns_provider_http"] = True
    if "providers" not in ctx:
        ctx["providers"] = build_providers(
            settings, ctx["provider_http"], emit=provider_event_emitter(redis, settings)
        )
    ctx["send_semaphore"] = asyncio.Semaphore(max(settings.dispatch_send_concurrency, 1))


async def stop_delivery(ctx: dict[str, Any]) -> None:
    if ctx.get("owns_provider_http"):
        http: ProviderHTTP = ctx["provider_http"]
        await http.aclose()


def provider_event_emitter(redis: ArqRedis, settings: Settings) -> Any:
    """The sandbox's ``emit``: a deferred ``delivery.apply_provider_event`` job."""
    from mensajero.workers import enqueue

    async def emit(event: ProviderEvent, delay_seconds: float) -> None:
        await enqueue(
            redis,
            settings,
            APPLY_EVENT_JOB,
            event_to_dict(event),
            job_id=f"{APPLY_EVENT_JOB}:{event.dedup_key}",
            defer_by=max(delay_seconds, 0.0) or None,
        )

    return emit


def event_to_dict(event: ProviderEvent) -> dict[str, Any]:
    return {
        "provider": event.provider,
        "external_id": event.external_id,
        "event": str(event.event),
        "status": None if event.status is None else str(event.status),
        "occurred_at": event.occurred_at.isoformat(),
        "dedup_key": event.dedup_key,
        "error_code": event.error_code,
        "error_message": event.error_message,
        "metadata": dict(event.metadata),
        "attempt_id": None if event.attempt_id is None else str(event.attempt_id),
    }


def event_from_dict(data: dict[str, Any]) -> ProviderEvent:
    return ProviderEvent(
        provider=data["provider"],
        external_id=data["external_id"],
        event=TimelineEventType(data["event"]),
        status=None if data.get("status") is None else MessageStatus(data["status"]),
        occurred_at=datetime.fromisoformat(data["occurred_at"]),
        dedup_key=data["dedup_key"],
        error_code=data.get("error_code"),
        error_message=data.get("error_message"),
        metadata=dict(data.get("metadata") or {}),
        attempt_id=None if not data.get("attempt_id") else uuid.UUID(data["attempt_id"]),
    )


# --- delivery.dispatch -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Accepted:
    attempt: ClaimedAttempt
    result: ProviderAccepted
    at: datetime


@dataclass(frozen=True, slots=True)
class _Refused:
    attempt: ClaimedAttempt
    error: ProviderError
    at: datetime
    idempotent: bool


async def dispatch(ctx: dict[str, Any], log_ids: Sequence[str]) -> dict[str, int]:
    """Claim, send and record a batch of attempts (see the module docstring)."""
    settings: Settings = ctx["settings"]
    sessionmaker: async_sessionmaker[AsyncSession] = ctx["sessionmaker"]
    redis: ArqRedis = ctx["redis"]
    ids = [uuid.UUID(str(log_id)) for log_id in log_ids]
    async with transaction(sessionmaker, redis=redis) as session:
        claimed = await delivery_service.claim_for_dispatch(session, log_ids=ids)
        configs = await repository.channel_configs(
            session, [attempt.organization_id for attempt in claimed]
        )
    if not claimed:
        return {"claimed": 0}
    providers: dict[Channel, ChannelProvider] = ctx["providers"]
    semaphore: asyncio.Semaphore = ctx["send_semaphore"]
    renewal = asyncio.create_task(
        _renew_claims_while_sending(settings, sessionmaker, [attempt.id for attempt in claimed])
    )
    try:
        outcomes = await asyncio.gather(
            *(_send(attempt, providers, configs, semaphore) for attempt in claimed)
        )
    finally:
        renewal.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewal
    return await _record_outcomes(settings, sessionmaker, redis, outcomes)


async def _renew_claims_while_sending(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    log_ids: Sequence[uuid.UUID],
) -> None:
    """Claims are leases: a live worker renews them, so only a dead one's go stale.

    This lets ``dispatch_stale_after_seconds`` stay short (fast recovery after a
    crash) however long a batch takes to send.
    """
    interval = max(settings.dispatch_stale_after_seconds / 3, 0.1)
    while True:
        await asyncio.sleep(interval)
        try:
            async with transaction(sessionmaker) as session:
                await repository.renew_claims(session, log_ids, now=utcnow())
        except Exception:  # a missed renewal only risks an early (idempotent) recovery
            logger.exception("could not renew %d claims", len(log_ids))


async def _send(
    attempt: ClaimedAttempt,
    providers: dict[Channel, ChannelProvider],
    configs: dict[uuid.UUID, ChannelConfig],
    semaphore: asyncio.Semaphore,
) -> _Accepted | _Refused:
    channel = Channel(attempt.channel)
    provider = providers.get(channel)
    if provider is None:
        error = ProviderError(
            "no_provider", f"no provider configured for {channel}", transient=False
        )
        return _Refused(attempt, error, utcnow(), idempotent=True)
    message = _outbound_message(attempt, channel, configs.get(attempt.organization_id))
    async with semaphore:
        try:
            result = await provider.send(message)
        except ProviderError as error:
            return _Refused(attempt, error, utcnow(), is_idempotent(provider))
        except Exception as error:  # a bug in a provider must not lose the batch
            logger.exception("provider %s raised while sending %s", provider.name, attempt.id)
            wrapped = ProviderError(
                "internal_error",
                f"{type(error).__name__}: {error}",
                transient=True,
                provider=provider.name,
                ambiguous=True,
            )
            return _Refused(attempt, wrapped, utcnow(), is_idempotent(provider))
    return _Accepted(attempt, result, utcnow())


def _outbound_message(
    attempt: ClaimedAttempt, channel: Channel, config: ChannelConfig | None
) -> OutboundMessage:
    """What the provider needs, with the organization's sender settings for the channel."""
    from_address = from_name = reply_to = None
    if config is not None:
        if channel == Channel.EMAIL:
            from_address = config.email.get("fromEmail") or None
            from_name = config.email.get("fromName") or None
            reply_to = config.email.get("replyTo") or None
        elif channel == Channel.SMS:
            from_address = config.sms.get("fromNumber") or None
    metadata = dict(attempt.message_metadata)
    if channel == Channel.WHATSAPP and config is not None and config.whatsapp.get("instanceName"):
        metadata.setdefault("instanceName", config.whatsapp["instanceName"])
    return OutboundMessage(
        attempt_id=attempt.id,
        organization_id=attempt.organization_id,
        channel=channel,
        recipient=attempt.recipient,
        body=attempt.body,
        subject=attempt.subject,
        html=attempt.html,
        template_id=attempt.template_id,
        from_address=from_address,
        from_name=from_name,
        reply_to=reply_to,
        metadata=metadata,
    )


def retry_delay(settings: Settings, retries: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter; a provider's ``Retry-After`` is a floor."""
    backoff = settings.dispatch_retry_base_seconds * (2 ** max(retries - 1, 0))
    backoff = min(backoff, settings.dispatch_retry_max_seconds) * random.uniform(0.8, 1.2)
    return max(backoff, retry_after or 0.0)


async def _record_outcomes(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: ArqRedis,
    outcomes: Sequence[_Accepted | _Refused],
) -> dict[str, int]:
    from mensajero.services.credits import refund_attempts

    accepted = [o for o in outcomes if isinstance(o, _Accepted)]
    refused = [o for o in outcomes if isinstance(o, _Refused)]
    now = utcnow()
    failed: list[_Refused] = []
    retried: dict[int, list[uuid.UUID]] = defaultdict(list)
    left_for_reconciler = 0
    async with transaction(sessionmaker, redis=redis) as session:
        await delivery_service.record_sent(
            session,
            accepted=[(o.attempt, o.result, o.at) for o in accepted],
            now=now,
        )
        for outcome in refused:
            error, attempt = outcome.error, outcome.attempt
            if not error.transient:
                failed.append(outcome)
                continue
            if error.ambiguous and not outcome.idempotent:
                # It may have been delivered: only a callback or the reconciler's
                # window can tell (module docstring).
                left_for_reconciler += 1
                continue
            retries = attempt.retries + 1
            if retries > settings.dispatch_max_retries:
                failed.append(outcome)
                continue
            delay = retry_delay(settings, retries, error.retry_after)
            metadata = {
                **attempt.provider_metadata,
                "retries": retries,
                "lastError": {"code": error.code, "message": error.message, "at": now.isoformat()},
            }
            if await delivery_service.requeue_attempt(
                session,
                attempt=attempt,
                reason="transient_error",
                not_before=now + timedelta(seconds=delay),
                provider_metadata=metadata,
                now=now,
                error=error,
            ):
                retried[max(round(delay), 1)].append(attempt.id)
        for outcome in failed:
            await delivery_service.record_failure(
                session, log_id=outcome.attempt.id, error=outcome.error, occurred_at=outcome.at
            )
        if failed:
            await refund_attempts(
                session,
                log_ids=[outcome.attempt.id for outcome in failed],
                reason="provider refused the message",
                now=now,
            )
        for delay, ids in retried.items():
            defer_enqueue(
                session,
                settings,
                DISPATCH_JOB,
                [str(log_id) for log_id in ids],
                job_id=_job_id("retry", ids, now),
                defer_by=delay,
            )
    return {
        "claimed": len(outcomes),
        "sent": len(accepted),
        "failed": len(failed),
        "retried": sum(len(ids) for ids in retried.values()),
        "unknown": left_for_reconciler,
    }


def _job_id(kind: str, ids: Sequence[uuid.UUID], now: datetime | None = None) -> str:
    digest = hashlib.sha1(b"".join(sorted(log_id.bytes for log_id in ids))).hexdigest()[:20]
    suffix = "" if now is None else f":{int(now.timestamp())}"
    return f"{DISPATCH_JOB}:{kind}:{digest}{suffix}"


# --- delivery.apply_provider_event -------------------------------------------------------------


async def apply_provider_event(ctx: dict[str, Any], event: dict[str, Any]) -> bool:
    """Apply one provider event; True if it changed something."""
    async with transaction(ctx["sessionmaker"], redis=ctx["redis"]) as session:
        outcome = await delivery_service.apply_provider_event(session, event=event_from_dict(event))
    return outcome is not None and outcome.applied


# --- delivery.reconcile ------------------------------------------------------------------------


async def reconcile(ctx: dict[str, Any]) -> dict[str, int]:
    """Recover lost enqueues and dead workers' claims (see the module docstring)."""
    settings: Settings = ctx["settings"]
    redis: ArqRedis = ctx["redis"]
    # One reconciler at a time across workers: overlapping runs would only
    # fight over the same rows.
    lock_ttl = max(int(settings.dispatch_stale_after_seconds), 30)
    if not await redis.set(_RECONCILE_LOCK, b"1", nx=True, ex=lock_ttl):
        return {"recovered": 0, "confirmed": 0, "lost": 0}
    try:
        return await _reconcile(ctx, settings, redis)
    finally:
        await redis.delete(_RECONCILE_LOCK)


_RECONCILE_LOCK = "mensajero:delivery:reconcile:lock"


async def _reconcile(ctx: dict[str, Any], settings: Settings, redis: ArqRedis) -> dict[str, int]:
    now = utcnow()
    stale_before = now - timedelta(seconds=settings.dispatch_stale_after_seconds)
    limit = settings.reconcile_batch_limit
    recovered: list[uuid.UUID] = []
    confirmed = 0
    async with transaction(ctx["sessionmaker"], redis=redis) as session:
        stuck = await repository.find_stuck_sending(session, stale_before=stale_before, limit=limit)
        for attempt, external_id, provider in stuck:
            if external_id is not None:
                # A callback told us the provider has it: it was sent.
                await delivery_service.apply_transition(
                    session,
                    log_id=attempt.id,
                    transition=delivery_service.Transition(
                        event=TimelineEventType.SENT,
                        status=MessageStatus.SENT,
                        occurred_at=now,
                        dedup_key=delivery_service.status_dedup_key(TimelineEventType.SENT),
                        provider=provider,
                        external_id=external_id,
                        metadata={"reason": "recovered_claim"},
                    ),
                    now=utcnow(),
                )
                confirmed += 1
                continue
            metadata = {
                **attempt.provider_metadata,
                "recoveredClaims": int(attempt.provider_metadata.get("recoveredClaims", 0)) + 1,
            }
            if await delivery_service.requeue_attempt(
                session,
                attempt=attempt,
                reason="recovered_claim",
                not_before=None,
                provider_metadata=metadata,
                now=utcnow(),
            ):
                recovered.append(attempt.id)
        lost: list[uuid.UUID] = []
        if not await _queue_has_backlog(redis, settings):
            lost = await repository.find_lost_queued(
                session, stale_before=stale_before, limit=limit
            )
        batch = max(settings.dispatch_batch_size, 1)
        for kind, ids in (("recovered", recovered), ("lost", lost)):
            for start in range(0, len(ids), batch):
                chunk = ids[start : start + batch]
                defer_enqueue(
                    session,
                    settings,
                    DISPATCH_JOB,
                    [str(log_id) for log_id in chunk],
                    job_id=_job_id(kind, chunk),
                )
    if recovered or lost or confirmed:
        logger.warning(
            "reconciler: %d claims recovered, %d confirmed sent, %d lost enqueues",
            len(recovered),
            confirmed,
            len(lost),
        )
    return {"recovered": len(recovered), "confirmed": confirmed, "lost": len(lost)}


_BACKLOG_SAMPLE = 100


async def _queue_has_backlog(redis: ArqRedis, settings: Settings) -> bool:
    """Whether due jobs wait in the queue that no worker has started.

    Jobs of a dead worker stay "in progress" until arq's timeout and do not
    count: their attempts are exactly what the reconciler is for.
    """
    from arq.constants import in_progress_key_prefix

    now_ms = int(utcnow().timestamp() * 1000)
    due = await redis.zrangebyscore(
        settings.queue_name, "-inf", now_ms, start=0, num=_BACKLOG_SAMPLE
    )
    candidates = [job_id.decode() if isinstance(job_id, bytes) else str(job_id) for job_id in due]
    candidates = [job_id for job_id in candidates if not job_id.startswith("cron:")]
    if not candidates:
        return False
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in candidates:
            pipe.exists(in_progress_key_prefix + job_id)
        in_progress = await pipe.execute()
    return any(not running for running in in_progress)
