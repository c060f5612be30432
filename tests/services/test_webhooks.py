"""Which transitions become which webhook events, their payloads, and the fan-out's transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.events import StatusEvent
from mensajero.models import (
    Channel,
    MessageStatus,
    TimelineEventType,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from mensajero.outbox import pending_jobs
from mensajero.providers.base import InboundReply, ProviderAccepted, ProviderError
from mensajero.services import delivery as delivery_service
from mensajero.services import inbound as inbound_service
from mensajero.services import webhook as webhook_service
from mensajero.services.errors import InvalidInput, NotFound
from mensajero.services.webhook import webhook_event_for
from tests.delivery_support import create_attempt_row
from tests.factories import create_client, create_organization

S = MessageStatus
T = TimelineEventType


def _bus_event(event: str, previous: str, status: str, channel: str = "sms") -> StatusEvent:
    return StatusEvent(
        organization_id="o",
        message_id="m",
        log_id="l",
        event=event,
        previous_status=previous,
        status=status,
        occurred_at=utcnow().isoformat(),
        channel=channel,
    )


@pytest.mark.parametrize(
    ("event", "previous", "status", "channel", "expected"),
    [
        (T.QUEUED, S.SCHEDULED, S.QUEUED, "sms", None),
        (T.SENDING, S.QUEUED, S.SENDING, "sms", None),
        (T.SENT, S.SENDING, S.SENT, "sms", "communication.sent"),
        (T.DELIVERED, S.SENT, S.DELIVERED, "sms", "communication.delivered"),
        (T.DELIVERED, S.READ, S.READ, "whatsapp", "communication.delivered"),  # late, still news
        (T.DELIVERED, S.UNDELIVERED, S.UNDELIVERED, "sms", None),  # cannot un-fail
        (T.READ, S.DELIVERED, S.READ, "whatsapp", None),
        (T.OPENED, S.DELIVERED, S.DELIVERED, "email", "communication.opened"),
        (T.CLICKED, S.DELIVERED, S.DELIVERED, "email", "communication.clicked"),
        (T.BOUNCED, S.SENT, S.BOUNCED, "email", "communication.bounced"),
        (T.BOUNCED, S.DELIVERED, S.DELIVERED, "email", None),  # recorded, not applied
        (T.FAILED, S.SENDING, S.FAILED, "sms", "communication.failed"),
        (T.UNDELIVERED, S.SENT, S.UNDELIVERED, "sms", "communication.failed"),
        (T.RESPONSE, S.DELIVERED, S.DELIVERED, "whatsapp", "whatsapp.response"),
        (T.RESPONSE, S.DELIVERED, S.DELIVERED, "sms", None),
        (T.RECEIVED, S.RECEIVED, S.RECEIVED, "whatsapp", None),
    ],
)
def test_which_bus_events_are_announced(
    event: str, previous: str, status: str, channel: str, expected: str | None
) -> None:
    assert webhook_event_for(_bus_event(event, previous, status, channel)) == expected


async def _endpoint(session: AsyncSession, organization: Any, **kwargs: Any) -> WebhookEndpoint:
    return await webhook_service.create_endpoint(
        session, organization_id=organization.id, url="https://hooks.example.com/x", **kwargs
    )


async def _payloads(session: AsyncSession, endpoint: WebhookEndpoint) -> list[dict[str, Any]]:
    result = await session.execute(
        select(WebhookDelivery.payload)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
    )
    return list(result.scalars())


async def _apply(session: AsyncSession, log_id: Any, event: T, status: S | None, **kw: Any) -> None:
    await delivery_service.apply_transition(
        session,
        log_id=log_id,
        transition=delivery_service.Transition(
            event=event,
            status=status,
            occurred_at=utcnow(),
            dedup_key=kw.pop("dedup_key", None) or delivery_service.status_dedup_key(event),
            **kw,
        ),
    )


async def test_engagement_and_failure_payloads(session: AsyncSession) -> None:
    organization = await create_organization(session)
    client = await create_client(session, organization)
    endpoint = await _endpoint(session, organization)
    email = await create_attempt_row(session, organization, client, channel="email", status=S.SENT)
    await _apply(session, email.id, T.DELIVERED, S.DELIVERED)
    await _apply(
        session,
        email.id,
        T.OPENED,
        None,
        dedup_key="o1",
        metadata={"userAgent": "Mozilla/5.0", "ip": "203.0.113.9"},
    )
    await _apply(
        session, email.id, T.CLICKED, None, dedup_key="c1", metadata={"link": "https://x.example"}
    )
    sms = await create_attempt_row(session, organization, client, status=S.SENDING)
    await delivery_service.record_failure(
        session,
        log_id=sms.id,
        error=ProviderError(
            "21211", "Invalid 'To' Phone Number", transient=False, provider="twilio"
        ),
    )
    delivered, opened, clicked, failed = await _payloads(session, endpoint)
    assert [p["event"] for p in (delivered, opened, clicked, failed)] == [
        "communication.delivered",
        "communication.opened",
        "communication.clicked",
        "communication.failed",
    ]
    assert opened["data"]["userAgent"] == "Mozilla/5.0" and opened["data"]["ip"] == "203.0.113.9"
    assert clicked["data"]["link"] == "https://x.example"
    assert opened["data"]["clientEmail"] == client.email
    assert failed["data"]["status"] == "failed"
    assert failed["data"]["error"]["code"] == "21211"
    assert failed["data"]["reason"] == "Invalid 'To' Phone Number"
    assert failed["data"]["clientPhone"] == client.phone_e164


async def test_a_whatsapp_reply_is_announced_as_whatsapp_response(session: AsyncSession) -> None:
    organization = await create_organization(session)
    client = await create_client(session, organization)
    endpoint = await _endpoint(session, organization, event_types=["whatsapp.response"])
    log = await create_attempt_row(session, organization, client, channel="whatsapp", status=S.SENT)
    received_at = utcnow() - timedelta(seconds=5)
    outcome = await inbound_service.record_inbound_reply(
        session,
        reply=InboundReply(
            provider="evolution",
            channel=Channel.WHATSAPP,
            sender=client.phone_e164,
            text="Sí, confirmo",
            external_id="wamid.1",
            received_at=received_at,
        ),
    )
    assert outcome is not None and outcome.responded_log_id == log.id
    (payload,) = await _payloads(session, endpoint)
    assert payload["event"] == "whatsapp.response"
    assert payload["data"]["logId"] == str(log.id)
    assert payload["data"]["text"] == "Sí, confirmo"
    assert payload["data"]["receivedAt"] == webhook_service.iso_utc(received_at)
    assert payload["data"]["clientPhone"] == client.phone_e164


async def test_a_dispatch_batch_fans_out_in_bulk(session: AsyncSession) -> None:
    organization = await create_organization(session)
    quiet = await create_organization(session)
    everything = await _endpoint(session, organization)
    bounces = await _endpoint(session, organization, event_types=["communication.bounced"])
    logs = [
        await create_attempt_row(session, organization, recipient=f"+5730000000{i:02d}")
        for i in range(30)
    ] + [await create_attempt_row(session, quiet)]
    claimed = await delivery_service.claim_for_dispatch(session, log_ids=[log.id for log in logs])
    assert not pending_jobs(session)  # SENDING announces nothing
    now = utcnow()
    await delivery_service.record_sent(
        session,
        accepted=[
            (attempt, ProviderAccepted(provider="twilio", external_id=f"SM{i}"), now)
            for i, attempt in enumerate(claimed)
        ],
    )
    payloads = await _payloads(session, everything)
    assert len(payloads) == 30
    assert {p["event"] for p in payloads} == {"communication.sent"}
    ours = {f"SM{i}" for i, a in enumerate(claimed) if a.organization_id == organization.id}
    assert {p["data"]["externalId"] for p in payloads} == ours
    assert await _payloads(session, bounces) == []
    jobs = [job for job in pending_jobs(session) if job.job_name == webhook_service.DELIVER_JOB]
    assert len(jobs) == 30


async def test_a_rolled_back_transition_leaves_no_delivery_and_no_job(
    session: AsyncSession,
) -> None:
    organization = await create_organization(session)
    endpoint = await _endpoint(session, organization)
    log = await create_attempt_row(session, organization, status=S.SENT)
    await session.commit()
    await _apply(session, log.id, T.DELIVERED, S.DELIVERED)
    assert len(await _payloads(session, endpoint)) == 1
    await session.rollback()
    assert pending_jobs(session) == []
    count = await session.scalar(select(func.count()).select_from(WebhookDelivery))
    assert count == 0


async def test_endpoint_validation_and_scoping(session: AsyncSession) -> None:
    organization = await create_organization(session)
    other = await create_organization(session)
    with pytest.raises(InvalidInput) as error:
        await _endpoint(session, organization, event_types=["communication.nope"])
    assert error.value.field == "eventTypes"
    with pytest.raises(InvalidInput):
        await webhook_service.create_endpoint(
            session, organization_id=organization.id, url="javascript:alert(1)"
        )
    endpoint = await _endpoint(session, organization)
    assert endpoint.event_types == []  # every event
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) > 40
    for call in (
        webhook_service.rotate_secret(session, organization_id=other.id, endpoint_id=endpoint.id),
        webhook_service.delete_endpoint(session, organization_id=other.id, endpoint_id=endpoint.id),
        webhook_service.update_endpoint(
            session,
            organization_id=other.id,
            endpoint_id=endpoint.id,
            changes={"url": "https://a.b"},
        ),
    ):
        with pytest.raises(NotFound):
            await call
    assert await webhook_service.list_endpoints(session, organization_id=other.id) == []
