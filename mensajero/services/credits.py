"""Credits: atomic debits, refunds and top-ups, each written to the ledger.

The organization's balance always equals the sum of its ledger: every change
of ``credit_balance`` happens in the same transaction as its ledger entry, and
the entry records the balance right after it (``balance_after``).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import CreditLedgerEntry, LedgerEntryKind, utcnow
from mensajero.repositories import credit as credit_repository
from mensajero.repositories.credit import CreditLedgerRepository
from mensajero.services.errors import InsufficientCredits, InvalidInput, NotFound


async def debit(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    amount: int,
    channel: str | None,
    queue_id: str | None,
    message_count: int,
    description: str,
    log_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> int:
    """Take ``amount`` credits, or raise :class:`InsufficientCredits` and change nothing.

    One conditional UPDATE decides, so concurrent sends never overdraw: the
    loser of a race sees the winner's balance and fails cleanly. Returns the
    balance after the debit.
    """
    if amount < 0:
        raise ValueError("a debit amount must not be negative")
    now = now or utcnow()
    if amount == 0:
        balance = await credit_repository.get_balance(session, organization_id)
        if balance is None:
            raise NotFound("organization not found")
        return balance
    balance = await credit_repository.subtract_if_covered(session, organization_id, amount, now=now)
    if balance is None:
        available = await credit_repository.get_balance(session, organization_id)
        if available is None:
            raise NotFound("organization not found")
        raise InsufficientCredits(required=amount, available=available)
    await CreditLedgerRepository(session, organization_id).add(
        CreditLedgerEntry(
            organization_id=organization_id,
            kind=LedgerEntryKind.DEBIT,
            amount=-amount,
            balance_after=balance,
            channel=channel,
            queue_id=queue_id,
            message_count=message_count,
            log_id=log_id,
            description=description,
            created_at=now,
        )
    )
    return balance


async def refund_attempts(
    session: AsyncSession,
    *,
    log_ids: Sequence[uuid.UUID],
    reason: str,
    now: datetime | None = None,
) -> int:
    """Give back the credits of attempts that never reached a provider.

    Each attempt is refunded at most once, however often or concurrently this
    is called for it (its ``refunded`` flag flips false -> true in the same
    statement that selects it). One ledger entry per organization per call.
    Returns the credits given back.
    """
    now = now or utcnow()
    flipped = await credit_repository.mark_attempts_refunded(session, log_ids, now=now)
    by_organization: dict[uuid.UUID, list[tuple[uuid.UUID, int]]] = defaultdict(list)
    for organization_id, log_id, cost in flipped:
        by_organization[organization_id].append((log_id, cost))
    total = 0
    for organization_id, attempts in by_organization.items():
        amount = sum(cost for _, cost in attempts)
        balance = await credit_repository.add(session, organization_id, amount, now=now)
        if balance is None:  # the organization is gone; nothing to give back to
            continue
        await CreditLedgerRepository(session, organization_id).add(
            CreditLedgerEntry(
                organization_id=organization_id,
                kind=LedgerEntryKind.REFUND,
                amount=amount,
                balance_after=balance,
                message_count=len(attempts),
                log_id=attempts[0][0] if len(attempts) == 1 else None,
                description=reason[:500],
                created_at=now,
            )
        )
        total += amount
    return total


async def top_up(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    amount: int,
    description: str = "top-up",
    now: datetime | None = None,
) -> int:
    """Add credits; returns the new balance."""
    if amount <= 0:
        raise InvalidInput("a top-up must be a positive number of credits", field="amount")
    now = now or utcnow()
    balance = await credit_repository.add(session, organization_id, amount, now=now)
    if balance is None:
        raise NotFound("organization not found")
    await CreditLedgerRepository(session, organization_id).add(
        CreditLedgerEntry(
            organization_id=organization_id,
            kind=LedgerEntryKind.TOPUP,
            amount=amount,
            balance_after=balance,
            description=description[:500],
            created_at=now,
        )
    )
    return balance


async def ledger_balance(session: AsyncSession, *, organization_id: uuid.UUID) -> int:
    """The sum of the organization's ledger (equals its balance; audits compare the two)."""
    return await CreditLedgerRepository(session, organization_id).sum_amounts()
