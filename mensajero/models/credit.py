"""The credit ledger: the organization's balance is always the sum of its entries."""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import BigInteger, Index
from sqlmodel import Field

from mensajero.models.base import CreatedModel, enum_column


class LedgerEntryKind(StrEnum):
    TOPUP = "topup"
    DEBIT = "debit"
    REFUND = "refund"
    ADJUSTMENT = "adjustment"


class CreditLedgerEntry(CreatedModel, table=True):
    __tablename__ = "credit_ledger"
    __table_args__ = (
        Index(None, "organization_id", "created_at"),
        Index(None, "organization_id", "queue_id"),
    )

    organization_id: uuid.UUID = Field(foreign_key="organizations.id", ondelete="CASCADE")
    kind: str = Field(sa_type=enum_column(16))
    # Signed: debits are negative.
    amount: int = Field(sa_type=BigInteger)
    balance_after: int = Field(sa_type=BigInteger)
    channel: str | None = Field(default=None, sa_type=enum_column(16))
    queue_id: str | None = Field(default=None, max_length=64)
    message_count: int = Field(default=0)
    log_id: uuid.UUID | None = Field(default=None, foreign_key="communication_logs.id")
    description: str = Field(default="", max_length=500)
