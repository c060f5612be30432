from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import (
    Channel,
    CommunicationLog,
    CreditLedgerEntry,
    LedgerEntryKind,
    Message,
    Organization,
)
from mensajero.services import credits
from mensajero.services.errors import InsufficientCredits, InvalidInput
from tests.factories import create_client, create_organization


async def _balance(session: AsyncSession, organization: Organization) -> int:
    await session.refresh(organization)
    return organization.credit_balance


async def test_debit_takes_credits_and_writes_a_ledger_entry(session: AsyncSession) -> None:
    organization = await create_organization(session)
    await credits.top_up(session, organization_id=organization.id, amount=10)

    balance = await credits.debit(
        session,
        organization_id=organization.id,
        amount=7,
        channel="sms",
        queue_id="sms-q1",
        message_count=7,
        description="test",
    )

    assert balance == 3
    assert organization.credit_balance == 3  # the loaded row follows the UPDATE
    entries = (
        (
            await session.execute(
                select(CreditLedgerEntry)
                .where(CreditLedgerEntry.organization_id == organization.id)
                .order_by(CreditLedgerEntry.created_at)
            )
        )
        .scalars()
        .all()
    )
    assert [(e.kind, e.amount, e.balance_after) for e in entries] == [
        (LedgerEntryKind.TOPUP, 10, 10),
        (LedgerEntryKind.DEBIT, -7, 3),
    ]
    assert entries[1].queue_id == "sms-q1" and entries[1].message_count == 7
    assert await credits.ledger_balance(session, organization_id=organization.id) == 3


async def test_debit_beyond_the_balance_raises_and_changes_nothing(session: AsyncSession) -> None:
    organization = await create_organization(session)
    await credits.top_up(session, organization_id=organization.id, amount=5)

    with pytest.raises(InsufficientCredits) as raised:
        await credits.debit(
            session,
            organization_id=organization.id,
            amount=6,
            channel="sms",
            queue_id=None,
            message_count=6,
            description="too much",
        )

    assert (raised.value.required, raised.value.available) == (6, 5)
    assert await _balance(session, organization) == 5
    assert await credits.ledger_balance(session, organization_id=organization.id) == 5


async def test_top_up_must_be_positive(session: AsyncSession) -> None:
    organization = await create_organization(session)
    with pytest.raises(InvalidInput):
        await credits.top_up(session, organization_id=organization.id, amount=0)


async def test_refund_gives_each_attempt_back_once(session: AsyncSession) -> None:
    organization = await create_organization(session)
    await credits.top_up(session, organization_id=organization.id, amount=10)
    client = await create_client(session, organization)
    message = Message(
        organization_id=organization.id,
        client_id=client.id,
        channel=Channel.SMS,
        body="hola",
        recipient=client.phone_e164 or "",
    )
    session.add(message)
    await session.flush()
    logs = [
        CommunicationLog(
            organization_id=organization.id,
            message_id=message.id,
            channel=Channel.SMS,
            recipient=message.recipient,
            cost=cost,
        )
        for cost in (2, 3, 0)
    ]
    session.add_all(logs)
    await session.flush()
    await credits.debit(
        session,
        organization_id=organization.id,
        amount=5,
        channel="sms",
        queue_id=None,
        message_count=2,
        description="send",
    )

    ids = [log.id for log in logs]
    assert await credits.refund_attempts(session, log_ids=ids, reason="never sent") == 5
    assert await credits.refund_attempts(session, log_ids=ids, reason="again") == 0

    assert await _balance(session, organization) == 10
    assert await credits.ledger_balance(session, organization_id=organization.id) == 10
    refunds = (
        (
            await session.execute(
                select(CreditLedgerEntry).where(
                    CreditLedgerEntry.organization_id == organization.id,
                    CreditLedgerEntry.kind == LedgerEntryKind.REFUND,
                )
            )
        )
        .scalars()
        .all()
    )
    assert [(r.amount, r.balance_after, r.message_count) for r in refunds] == [(5, 10, 2)]
