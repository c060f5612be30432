"""SQL for credit balances and the credit ledger.

Balances change only through single conditional UPDATE statements, never a
read-modify-write in Python, so concurrent transactions can neither overdraw
nor lose an update: PostgreSQL re-checks the WHERE clause after waiting for the
row lock, SQLite runs one writer at a time (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import attributes

from mensajero.models import CommunicationLog, CreditLedgerEntry, Organization
from mensajero.repositories.base import OrganizationScopedRepository

_organizations = Organization.__table__  # type: ignore[attr-defined]
_logs = CommunicationLog.__table__  # type: ignore[attr-defined]


def _sync_identity_map(session: AsyncSession, organization_id: uuid.UUID, balance: int) -> None:
    # The UPDATE went around the ORM: keep an already loaded Organization honest.
    organization = session.sync_session.identity_map.get(
        session.sync_session.identity_key(Organization, organization_id)  # type: ignore[arg-type]
    )
    if organization is not None:
        attributes.set_committed_value(organization, "credit_balance", balance)


async def get_balance(session: AsyncSession, organization_id: uuid.UUID) -> int | None:
    result = await session.execute(
        select(_organizations.c.credit_balance).where(_organizations.c.id == organization_id)
    )
    return result.scalar_one_or_none()


async def subtract_if_covered(
    session: AsyncSession, organization_id: uuid.UUID, amount: int, *, now: datetime
) -> int | None:
    """Take ``amount`` off the balance if it covers it: the new balance, or None if not."""
    result = await session.execute(
        update(_organizations)
        .where(_organizations.c.id == organization_id, _organizations.c.credit_balance >= amount)
        .values(credit_balance=_organizations.c.credit_balance - amount, updated_at=now)
        .returning(_organizations.c.credit_balance)
    )
    balance = result.scalar_one_or_none()
    if balance is not None:
        _sync_identity_map(session, organization_id, balance)
    return balance


async def add(
    session: AsyncSession, organization_id: uuid.UUID, amount: int, *, now: datetime
) -> int | None:
    """Add ``amount`` (positive) to the balance: the new balance, or None if no such org."""
    result = await session.execute(
        update(_organizations)
        .where(_organizations.c.id == organization_id)
        .values(credit_balance=_organizations.c.credit_balance + amount, updated_at=now)
        .returning(_organizations.c.credit_balance)
    )
    balance = result.scalar_one_or_none()
    if balance is not None:
        _sync_identity_map(session, organization_id, balance)
    return balance


async def mark_attempts_refunded(
    session: AsyncSession, log_ids: Sequence[uuid.UUID], *, now: datetime
) -> list[tuple[uuid.UUID, uuid.UUID, int]]:
    """Flip ``refunded`` false -> true on attempts that cost something.

    Returns ``(organization_id, log_id, cost)`` of the attempts this call
    flipped; an attempt already refunded (by a concurrent or earlier call) is
    not returned, so its credits are never given back twice.
    """
    if not log_ids:
        return []
    result = await session.execute(
        update(_logs)
        .where(_logs.c.id.in_(list(log_ids)), _logs.c.refunded.is_(False), _logs.c.cost > 0)
        .values(refunded=True, updated_at=now)
        .returning(_logs.c.organization_id, _logs.c.id, _logs.c.cost)
    )
    return [(row[0], row[1], row[2]) for row in result]


class CreditLedgerRepository(OrganizationScopedRepository[CreditLedgerEntry]):
    model = CreditLedgerEntry

    async def sum_amounts(self) -> int:
        result = await self.session.execute(
            self.scoped(func.coalesce(func.sum(self.model.amount), 0))
        )
        return int(result.scalar_one())

    async def list_for_queue(self, queue_id: str) -> list[CreditLedgerEntry]:
        result = await self.session.execute(
            self.scoped().where(self.model.queue_id == queue_id).order_by(self.model.created_at)
        )
        return list(result.scalars())
