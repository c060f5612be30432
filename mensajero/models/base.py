"""Shared column types, id generation and the metadata naming convention."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, String, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

# Stable constraint and index names, so migrations generated on one backend
# name things the same way on the other (polar: kit/db/models/base.py).
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7).

    New rows land at the right edge of their primary-key B-tree instead of at
    random pages, and ids sort in creation order, which keyset pagination uses
    as its tie-breaker.
    """
    unix_ms = time.time_ns() // 1_000_000
    random_bits = int.from_bytes(os.urandom(10), "big")
    rand_a = random_bits >> 68  # 12 bits
    rand_b = random_bits & ((1 << 62) - 1)
    value = (unix_ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


def uuid7_strings(count: int) -> Iterator[str]:
    """``count`` time-ordered UUIDv7 strings, cheaply (RFC 9562, section 6.2 method 2).

    One timestamp and one random start for the batch, then a counter in the
    low bits: the ids stay unique and sorted, and building them costs a string
    format each instead of a ``uuid.UUID`` (several times faster for 100k).
    Only the last group (48 bits) changes from one id to the next, so the
    first four groups are formatted once per run of ids that share them.
    """
    unix_ms = time.time_ns() // 1_000_000
    random_bits = int.from_bytes(os.urandom(10), "big")
    rand_a = random_bits >> 68
    # Start in the lower half of the 62 counter bits: no overflow into the variant.
    rand_b = random_bits & ((1 << 61) - 1)
    value = (unix_ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    low_bits = (1 << 48) - 1
    while count > 0:
        low = value & low_bits
        run = min(count, low_bits + 1 - low)  # ids until the last group wraps
        high = f"{value >> 48:020x}"
        prefix = f"{high[:8]}-{high[8:12]}-{high[12:16]}-{high[16:]}-"
        for offset in range(low, low + run):
            yield f"{prefix}{offset:012x}"
        value += run
        count -= run


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are
    stored as naive UTC and given back their UTC tzinfo when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not accepted; pass an aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        # asyncpg reads timestamptz as aware UTC datetimes already: no per-value call
        # (a page of 20 messages has 80 timestamps).
        if dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is UTC:  # asyncpg's timestamptz: nothing to convert (hot path)
            return value
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")


def enum_column(length: int = 32) -> Any:
    """Enums are stored as short strings: adding a value needs no type migration."""
    return String(length)


class IdModel(SQLModel):
    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)


class CreatedModel(IdModel):
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class TimestampedModel(CreatedModel):
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
