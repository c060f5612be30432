"""Upkeep of the message-count rollup."""

from __future__ import annotations

from typing import Any

from mensajero.db import transaction
from mensajero.services import message as message_service

COMPACT_COUNTS_JOB = "stats.compact_message_counts"


async def compact_message_counts(ctx: dict[str, Any]) -> int:
    """Fold the rollup's delta rows (one per write statement) into one row per key.

    Safe to run twice or next to another run: each fold takes only rows that
    exist when it starts and keeps every sum.
    """
    async with transaction(ctx["sessionmaker"]) as session:
        return await message_service.compact_counts(session)
