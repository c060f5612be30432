"""webhooks.deliver against a local receiver that verifies every signature, on both backends.

State-machine transitions create the deliveries (in their transaction); the
job functions are called directly with a worker context whose webhook client
talks to the receiver in-process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest_asyncio
from arq.connections import ArqRedis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from standardwebhooks import Webhook, WebhookVerificationError

from mensajero.db import create_sessionmaker
from mensajero.events import commit_and_publish
from mensajero.models import (
    MessageStatus,
    Organization,
    TimelineEventType,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    utcnow,
)
from mensajero.outbox import pending_jobs, take_pending_jobs
from mensajero.services import delivery as delivery_service
from mensajero.services import webhook as webhook_service
from mensajero.settings import Settings
from mensajero.workers import build_worker
from mensajero.workers import webhook as webhook_jobs
from tests.conftest import Backend
from tests.delivery_support import create_attempt_row, reload
from tests.factories import create_client, create_organization
from tests.webhook_support import RECEIVER_URL, Receiver

S = MessageStatus
D = WebhookDeliveryStatus


@pytest_asyncio.fixture
async def receiver() -> Receiver:
    return Receiver()


@pytest_asyncio.fixture
async def settings(backend: Backend) -> Settings:
    return backend.settings(
        webhook_retry_delays_seconds=[0.0, 0.0],
        webhook_disable_after_failures=2,
        webhook_timeout_seconds=2.0,
        webhook_allow_private_addresses=True,
    )


@pytest_asyncio.fixture
async def worker_ctx(
    settings: Settings, connection: AsyncConnection, redis: ArqRedis, receiver: Receiver
) -> AsyncIterator[dict[str, Any]]:
    async with receiver.client() as http:
        yield {
            "settings": settings,
            "sessionmaker": create_sessionmaker(connection),
            "redis": redis,
            "webhook_http": http,
        }


async def _endpoint(
    session: AsyncSession, organization: Organization, receiver: Receiver, **kwargs: Any
) -> WebhookEndpoint:
    endpoint = await webhook_service.create_endpoint(
        session, organization_id=organization.id, url=RECEIVER_URL, **kwargs
    )
    receiver.secret = endpoint.secret
    return endpoint


async def _transition(
    session: AsyncSession,
    log_id: Any,
    event: TimelineEventType,
    status: MessageStatus | None,
    **kwargs: Any,
) -> None:
    await delivery_service.apply_transition(
        session,
        log_id=log_id,
        transition=delivery_service.Transition(
            event=event,
            status=status,
            occurred_at=utcnow(),
            dedup_key=delivery_service.status_dedup_key(event) if status else f"k:{event}",
            **kwargs,
        ),
    )


async def _deliveries(session: AsyncSession, endpoint: WebhookEndpoint) -> list[WebhookDelivery]:
    result = await session.execute(
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.created_at)
        .execution_options(populate_existing=True)
    )
    return list(result.scalars())


async def _attempts(session: AsyncSession, delivery: WebhookDelivery) -> list[WebhookAttempt]:
    result = await session.execute(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery.id)
        .order_by(WebhookAttempt.created_at)
    )
    return list(result.scalars())


async def _run_until_settled(worker_ctx: dict[str, Any], delivery_id: Any) -> list[str | None]:
    """Run the delivery's jobs as the worker would: each attempt enqueues the next one."""
    redis: ArqRedis = worker_ctx["redis"]
    queue = worker_ctx["settings"].queue_name
    outcomes: list[str | None] = []
    attempt = 0
    while True:
        outcome = await webhook_jobs.deliver(worker_ctx, str(delivery_id), attempt)
        outcomes.append(outcome)
        attempt += 1
        job_id = f"{webhook_service.DELIVER_JOB}:{delivery_id}:{attempt}"
        if outcome != D.PENDING:
            assert await redis.zscore(queue, job_id) is None
            return outcomes
        # The retry was enqueued after the attempt's commit, under the attempt's job id.
        assert await redis.zscore(queue, job_id) is not None


async def test_a_transition_delivers_a_signed_envelope_the_verifier_accepts(
    session: AsyncSession, worker_ctx: dict[str, Any], receiver: Receiver
) -> None:
    organization = await create_organization(session)
    client = await create_client(session, organization)
    endpoint = await _endpoint(session, organization, receiver)
    log = await create_attempt_row(session, organization, client, status=S.SENDING)
    await _transition(
        session,
        log.id,
        TimelineEventType.SENT,
        S.SENT,
        provider="twilio",
        external_id="SM123",
    )
    jobs = [job for job in pending_jobs(session) if job.job_name == webhook_service.DELIVER_JOB]
    (delivery,) = await _deliveries(session, endpoint)
    assert [job.args for job in jobs] == [(str(delivery.id), 0)]
    await commit_and_publish(session, worker_ctx["redis"])

    assert await _run_until_settled(worker_ctx, delivery.id) == [D.SUCCEEDED]

    (received,) = receiver.received
    assert received.error is None
    assert received.headers["webhook-id"] == str(delivery.id)
    assert received.headers["content-type"] == "application/json"
    payload = received.payload
    assert payload["event"] == "communication.sent"
    assert set(payload) == {"event", "data", "timestamp"}
    data = payload["data"]
    assert data["logId"] == str(log.id)
    assert data["messageId"] == str(log.message_id)
    assert data["clientId"] == str(client.id)
    assert data["clientEmail"] == client.email
    assert data["clientPhone"] == client.phone_e164
    assert data["channel"] == "sms"
    assert data["status"] == "sent"
    assert data["externalId"] == "SM123"
    assert data["timestamp"].endswith("Z")
    delivery = await reload(session, WebhookDelivery, delivery.id)
    assert delivery.status == D.SUCCEEDED
    assert delivery.attempt_count == 1
    assert delivery.delivered_at is not None
    (attempt,) = await _attempts(session, delivery)
    assert attempt.succeeded and attempt.response_status == 200
    assert attempt.response_body == '{"ok":true}'


async def test_a_bounce_carries_bounce_type_and_reason(
    session: AsyncSession, worker_ctx: dict[str, Any], receiver: Receiver
) -> None:
    organization = await create_organization(session)
    client = await create_client(session, organization)
    await _endpoint(session, organization, receiver, event_types=["communication.bounced"])
    log = await create_attempt_row(session, organization, client, channel="email", status=S.SENT)
    await _transition(
        session,
        log.id,
        TimelineEventType.BOUNCED,
        S.BOUNCED,
        error_code="bounce_hard",
        error_message="Mailbox does not exist",
        metadata={"bounceType": "hard"},
    )
    await commit_and_publish(session, worker_ctx["redis"])
    (delivery,) = (await session.execute(select(WebhookDelivery))).scalars().all()
    await _run_until_settled(worker_ctx, delivery.id)
    (payload,) = receiver.verified
    assert payload["event"] == "communication.bounced"
    assert payload["data"]["bounceType"] == "hard"
    assert payload["data"]["reason"] == "Mailbox does not exist"
    assert payload["data"]["clientEmail"] == client.email
    assert payload["data"]["channel"] == "email"


async def test_an_endpoint_filtered_to_bounces_receives_nothing_for_a_delivery(
    session: AsyncSession, worker_ctx: dict[str, Any], receiver: Receiver
) -> None:
    organization = await create_organization(session)
    bounces = await _endpoint(
        session, organization, receiver, event_types=["communication.bounced"]
    )
    everything = await _endpoint(session, organization, receiver)
    log = await create_attempt_row(session, organization, status=S.SENT)
    await _transition(session, log.id, TimelineEventType.DELIVERED, S.DELIVERED)
    assert await _deliveries(session, bounces) == []
    (delivered,) = await _deliveries(session, everything)
    assert delivered.event_type == "communication.delivered"


async def test_no_deliveries_for_queued_sending_or_another_organization(
    session: AsyncSession, worker_ctx: dict[str, Any], receiver: Receiver
) -> None:
    organization = await create_organization(session)
    other = await create_organization(session)
    endpoint = await _endpoint(session, other, receiver)
    log = await create_attempt_row(session, organization, status=S.QUEUED)
    await delivery_service.claim_for_dispatch(session, log_ids=[log.id])
    await _transition(session, log.id, TimelineEventType.SENT, S.SENT)
    assert await _deliveries(session, endpoint) == []


async def test_a_failing_receiver_gets_retries_and_the_delivery_succeeds(
    session: AsyncSession, worker_ctx: dict[str, Any], receiver: Receiver
) -> None:
    organization = await create_organization(session)
    endpoint = await _endpoint(session, organization, receiver)
    log = await create_attempt_row(session, organization, status=S.SENT)
    await _transition(session, log.id, TimelineEventType.DELIVERED, S.DELIVERED)
    await commit_and_publish(session, worker_ctx["redis"])
    receiver.statuses = [500, 503]
    (delivery,) = await _deliveries(session, endpoint)

    assert await _run_until_settled(worker_ctx, delivery.id) == [D.PENDING, D.PENDING, D.SUCCEEDED]

    # Three verified requests, one webhook-id: the receiver can deduplicate.
    assert len(receiver.verified) == 3
    assert {item.headers["webhook-id"] for item in receiver.received} == {str(delivery.id)}
    attempts = await _attempts(session, delivery)
    assert [attempt.response_status for attempt in attempts] == [500, 503, 200]
    assert [attempt.succeeded for attempt in attempts] == [False, False, True]
    endpoint = await reload(session, WebhookEndpoint, endpoint.id)
    assert endpoint.enabled and endpoint.consecutive_failures == 0
    assert endpoint.failing_since is None


async def test_a_job_run_twice_sends_once(
    session: AsyncSession, worker_ctx: dict[str, Any], receiver: Receiver
) -> None:
    organization = await create_organization(session)
    endpoint = await _endpoint(session, organization, receiver)
    log = await create_attempt_row(session, organization, status=S.SENT)
    await _transition(session, log.id, TimelineEventType.DELIVERED, S.DELIVERED)
    await commit_and_publish(session, worker_ctx["redis"])
    (delivery,) = await _deliveries(session, endpoint)
    assert await webhook_jobs.deliver(worker_ctx, str(delivery.id), 0) == D.SUCCEEDED
    assert await webhook_jobs.deliver(worker_ctx, str(delivery.id), 0) is None
    assert len(receiver.received) == 1


async def test_an_unreachable_receiver_is_recorded_as_an_error(
    session: AsyncSession, settings: Settings, connection: AsyncConnection, redis: ArqRedis
) -> None:
    organization = await create_organization(session)
    endpoint = await webhook_service.create_endpoint(
        session, organization_id=organization.id, url="http://unreachable.test/hooks"
    )
    log = await create_attempt_row(session, organization, status=S.SENT)
    await _transition(session, log.id, TimelineEventType.DELIVERED, S.DELIVERED)
    await commit_and_publish(session, redis)
    (delivery,) = await _deliveries(session, endpoint)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        ctx = {
            "settings": settings,
            "sessionmaker": create_sessionmaker(connection),
            "redis": redis,
            "webhook_http": http,
        }
        assert await webhook_jobs.deliver(ctx, str(delivery.id), 0) == D.PENDING
    (attempt,) = await _attempts(session, delivery)
    assert attempt.response_status is None and not attempt.succeeded
    assert attempt.error is not None and "ConnectError" in attempt.error


async def test_an_always_failing_receiver_fails_and_the_endpoint_is_disabled(
    session: AsyncSession, worker_ctx: dict[str, Any], receiver: Receiver
) -> None:
    organization = await create_organization(session)
    endpoint = await _endpoint(session, organization, receiver)
    first = await create_attempt_row(session, organization, status=S.SENT)
    second = await create_attempt_row(session, organization, status=S.SENT)
    await _transition(session, first.id, TimelineEventType.DELIVERED, S.DELIVERED)
    await _transition(session, second.id, TimelineEventType.DELIVERED, S.DELIVERED)
    await commit_and_publish(session, worker_ctx["redis"])
    receiver.statuses = [500] * 6
    one, two = await _deliveries(session, endpoint)

    # Two retries after the first attempt, then the delivery gives up.
    assert await _run_until_settled(worker_ctx, one.id) == [D.PENDING, D.PENDING, D.FAILED]
    endpoint = await reload(session, WebhookEndpoint, endpoint.id)
    assert endpoint.enabled and endpoint.consecutive_failures == 1
    assert endpoint.failing_since is not None

    # The second failed delivery in a row reaches the threshold (2): disabled.
    assert await _run_until_settled(worker_ctx, two.id) == [D.PENDING, D.PENDING, D.FAILED]
    endpoint = await reload(session, WebhookEndpoint, endpoint.id)
    assert not endpoint.enabled
    assert endpoint.disabled_at is not None
    assert "2 failed deliveries" in (endpoint.disabled_reason or "")
    assert len(await _attempts(session, await reload(session, WebhookDelivery, one.id))) == 3

    # A disabled endpoint gets no new deliveries.
    third = await create_attempt_row(session, organization, status=S.SENT)
    await _transition(session, third.id, TimelineEventType.DELIVERED, S.DELIVERED)
    assert len(await _deliveries(session, endpoint)) == 2


async def test_replay_delivers_again_with_the_same_webhook_id(
    session: AsyncSession, worker_ctx: dict[str, Any], receiver: Receiver
) -> None:
    organization = await create_organization(session)
    endpoint = await _endpoint(session, organization, receiver)
    log = await create_attempt_row(session, organization, status=S.SENT)
    await _transition(session, log.id, TimelineEventType.DELIVERED, S.DELIVERED)
    await commit_and_publish(session, worker_ctx["redis"])
    (delivery,) = await _deliveries(session, endpoint)
    await _run_until_settled(worker_ctx, delivery.id)

    replayed = await webhook_service.replay_delivery(
        session,
        organization_id=organization.id,
        delivery_id=delivery.id,
        settings=worker_ctx["settings"],
    )
    assert replayed.delivery.status == D.PENDING
    assert len(replayed.attempts) == 1
    (job,) = [job for job in pending_jobs(session) if job.job_name == webhook_service.DELIVER_JOB]
    await commit_and_publish(session, worker_ctx["redis"])
    assert await webhook_jobs.deliver(worker_ctx, *job.args) == D.SUCCEEDED

    first, second = receiver.received
    assert first.error is None and second.error is None
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == str(delivery.id)
    assert first.payload == second.payload
    assert len(await _attempts(session, delivery)) == 2


async def test_rotation_signs_with_the_new_secret_and_the_old_one_during_grace(
    session: AsyncSession, worker_ctx: dict[str, Any], receiver: Receiver
) -> None:
    organization = await create_organization(session)
    endpoint = await _endpoint(session, organization, receiver)
    old_secret = endpoint.secret
    rotated = await webhook_service.rotate_secret(
        session, organization_id=organization.id, endpoint_id=endpoint.id
    )
    assert rotated.secret != old_secret and rotated.secret.startswith("whsec_")
    log = await create_attempt_row(session, organization, status=S.SENT)
    await _transition(session, log.id, TimelineEventType.DELIVERED, S.DELIVERED)
    await commit_and_publish(session, worker_ctx["redis"])
    (delivery,) = await _deliveries(session, endpoint)

    receiver.secret = rotated.secret
    await _run_until_settled(worker_ctx, delivery.id)
    (received,) = receiver.received
    assert received.error is None  # verifies with the new secret
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    # ... and with the old one, still in its grace period.
    Webhook(old_secret).verify(received.body, received.headers)


async def test_without_grace_the_old_secret_no_longer_verifies(
    session: AsyncSession, worker_ctx: dict[str, Any], receiver: Receiver
) -> None:
    organization = await create_organization(session)
    endpoint = await _endpoint(session, organization, receiver)
    old_secret = endpoint.secret
    settings = worker_ctx["settings"].model_copy(update={"webhook_secret_grace_hours": 0})
    rotated = await webhook_service.rotate_secret(
        session, organization_id=organization.id, endpoint_id=endpoint.id, settings=settings
    )
    log = await create_attempt_row(session, organization, status=S.SENT)
    await _transition(session, log.id, TimelineEventType.DELIVERED, S.DELIVERED)
    await commit_and_publish(session, worker_ctx["redis"])
    (delivery,) = await _deliveries(session, endpoint)
    receiver.secret = old_secret
    await _run_until_settled(worker_ctx, delivery.id)
    (received,) = receiver.received
    assert received.error is not None  # the old secret fails verification
    Webhook(rotated.secret).verify(received.body, received.headers)
    try:
        Webhook(old_secret).verify(received.body, received.headers)
    except WebhookVerificationError:
        pass
    else:
        raise AssertionError("the rotated-out secret still verifies")


async def test_the_reconciler_re_enqueues_a_lost_delivery(
    session: AsyncSession, worker_ctx: dict[str, Any], receiver: Receiver
) -> None:
    organization = await create_organization(session)
    endpoint = await _endpoint(session, organization, receiver)
    log = await create_attempt_row(session, organization, status=S.SENT)
    await _transition(session, log.id, TimelineEventType.DELIVERED, S.DELIVERED)
    (delivery,) = await _deliveries(session, endpoint)
    # The commit happened but the job never reached Redis (a crash in between).
    take_pending_jobs(session)
    delivery.next_attempt_at = utcnow() - timedelta(minutes=10)
    await session.commit()
    redis: ArqRedis = worker_ctx["redis"]
    queue = worker_ctx["settings"].queue_name
    job_id = f"{webhook_service.DELIVER_JOB}:{delivery.id}:0"
    assert await redis.zscore(queue, job_id) is None

    assert await webhook_jobs.reconcile(worker_ctx) == 1
    assert await redis.zscore(queue, job_id) is not None
    assert await webhook_jobs.deliver(worker_ctx, str(delivery.id), 0) == D.SUCCEEDED
    assert len(receiver.verified) == 1


async def test_a_burst_worker_runs_the_registered_job_through_its_retries(
    session: AsyncSession,
    settings: Settings,
    connection: AsyncConnection,
    redis: ArqRedis,
    receiver: Receiver,
) -> None:
    """The job as registered in the worker: arq serializes its arguments and runs the retries."""
    organization = await create_organization(session)
    endpoint = await _endpoint(session, organization, receiver)
    log = await create_attempt_row(session, organization, status=S.SENT)
    await _transition(session, log.id, TimelineEventType.DELIVERED, S.DELIVERED)
    await commit_and_publish(session, redis)
    receiver.statuses = [502]
    # One job at a time: every job shares the test's one connection.
    worker_settings = settings.model_copy(update={"worker_concurrency": 1})
    async with receiver.client() as http:
        worker = build_worker(
            worker_settings,
            redis,
            shared_context={"sessionmaker": create_sessionmaker(connection), "webhook_http": http},
            handle_signals=False,
            burst=True,
        )
        try:
            await asyncio.wait_for(worker.main(), 30)
        finally:
            await worker.on_shutdown(worker.ctx)  # type: ignore[misc]
    (delivery,) = await _deliveries(session, endpoint)
    assert delivery.status == D.SUCCEEDED
    assert [a.response_status for a in await _attempts(session, delivery)] == [502, 200]
    assert len(receiver.verified) == 2


async def test_an_endpoint_failing_for_too_long_is_disabled_when_a_delivery_gives_up(
    session: AsyncSession, worker_ctx: dict[str, Any], receiver: Receiver
) -> None:
    organization = await create_organization(session)
    endpoint = await _endpoint(session, organization, receiver)
    # Failing since long before the threshold (72 h), one failed delivery so far.
    endpoint.failing_since = utcnow() - timedelta(hours=80)
    endpoint.consecutive_failures = 0
    log = await create_attempt_row(session, organization, status=S.SENT)
    await _transition(session, log.id, TimelineEventType.DELIVERED, S.DELIVERED)
    await commit_and_publish(session, worker_ctx["redis"])
    receiver.statuses = [500] * 3
    (delivery,) = await _deliveries(session, endpoint)

    # Retries still pending do not disable it; giving up does.
    assert await webhook_jobs.deliver(worker_ctx, str(delivery.id), 0) == D.PENDING
    assert (await reload(session, WebhookEndpoint, endpoint.id)).enabled
    assert await _run_until_settled_from(worker_ctx, delivery.id, 1) == [D.PENDING, D.FAILED]
    endpoint = await reload(session, WebhookEndpoint, endpoint.id)
    assert not endpoint.enabled and endpoint.consecutive_failures == 1


async def _run_until_settled_from(
    worker_ctx: dict[str, Any], delivery_id: Any, attempt: int
) -> list[str | None]:
    outcomes: list[str | None] = []
    while True:
        outcome = await webhook_jobs.deliver(worker_ctx, str(delivery_id), attempt)
        outcomes.append(outcome)
        attempt += 1
        if outcome != D.PENDING:
            return outcomes


async def test_private_addresses_are_refused_unless_allowed(
    session: AsyncSession, settings: Settings, connection: AsyncConnection, redis: ArqRedis
) -> None:
    organization = await create_organization(session)
    endpoints = [
        await webhook_service.create_endpoint(
            session, organization_id=organization.id, url=f"http://{host}/hooks"
        )
        for host in ("127.0.0.1:8080", "10.1.2.3", "169.254.169.254", "[::1]", "localhost")
    ]
    log = await create_attempt_row(session, organization, status=S.SENT)
    await _transition(session, log.id, TimelineEventType.DELIVERED, S.DELIVERED)
    await commit_and_publish(session, redis)
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200)

    # By default refused in production (Redis), allowed in embedded mode (in-process Redis).
    assert not Settings(redis_url="redis://127.0.0.1:6379/0").webhooks_may_reach_private_addresses
    assert Settings(redis_url="memory://").webhooks_may_reach_private_addresses
    production = settings.model_copy(update={"webhook_allow_private_addresses": False})
    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as http:
        ctx = {
            "settings": production,
            "sessionmaker": create_sessionmaker(connection),
            "redis": redis,
            "webhook_http": http,
        }
        for endpoint in endpoints:
            (delivery,) = await _deliveries(session, endpoint)
            assert await webhook_jobs.deliver(ctx, str(delivery.id), 0) == D.PENDING
            (attempt,) = await _attempts(session, delivery)
            assert attempt.response_status is None
            assert "non-public address" in (attempt.error or ""), attempt.error
        assert requests == []
        # Allowed explicitly: the request goes out.
        ctx["settings"] = settings
        (delivery,) = await _deliveries(session, endpoints[0])
        assert await webhook_jobs.deliver(ctx, str(delivery.id), 1) == D.SUCCEEDED
        assert len(requests) == 1
