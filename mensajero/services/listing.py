"""The one filter and pagination vocabulary shared by GraphQL and the REST shim.

Filters are plain dataclasses (no GraphQL or HTTP types), so every door builds
the same filter and gets the same rows. Lists are newest first, ordered by
``(created_at, id)``: ids are UUIDv7, so the pair is unique and stable.

Two ways to page through the same ordering:

- :class:`KeysetPage` (GraphQL connections): ``first``/``after`` and
  ``last``/``before`` over an opaque cursor. A page costs the same at any
  depth: it seeks in an index ending in ``(created_at, id)``.
- :class:`OffsetPage` (the REST routes' ``page``/``limit``): OFFSET, which
  reads and skips every earlier row; fine for the first pages people click
  through, and the legacy contract requires page numbers.

Id filters hold UUIDs. ``None`` means "no filter"; an empty tuple means "match
nothing" (the door got only ids that were unparseable or not ours), so a bad
id never widens a filter.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Generic, TypeVar

from mensajero.services.errors import InvalidInput

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20


def encode_cursor(created_at: datetime, id: uuid.UUID) -> str:
    """:meth:`Cursor.encode` without building a Cursor (a page encodes one per row)."""
    micros = int(created_at.timestamp() * 1_000_000)
    return base64.urlsafe_b64encode(f"{micros}:{id.hex}".encode()).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a newest-first list: the row's ``(created_at, id)``."""

    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        return encode_cursor(self.created_at, self.id)

    @classmethod
    def decode(cls, value: str, *, field: str = "after") -> Cursor:
        try:
            padded = value + "=" * (-len(value) % 4)
            micros, _, hex_id = base64.urlsafe_b64decode(padded).decode().partition(":")
            created_at = datetime.fromtimestamp(int(micros) / 1_000_000, UTC)
            return cls(created_at, uuid.UUID(hex=hex_id))
        except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError) as error:
            raise InvalidInput(f"'{field}' is not a valid cursor", field=field) from error

    @classmethod
    def of(cls, row: object) -> Cursor:
        return cls(row.created_at, row.id)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class KeysetPage:
    """``first`` rows after ``after`` (newest first), or the ``last`` rows before ``before``."""

    first: int | None = None
    after: Cursor | None = None
    last: int | None = None
    before: Cursor | None = None

    @property
    def backward(self) -> bool:
        return self.last is not None

    @property
    def size(self) -> int:
        return self.last if self.last is not None else (self.first or 0)

    @classmethod
    def from_arguments(
        cls,
        *,
        first: int | None,
        after: str | None,
        last: int | None,
        before: str | None,
        max_size: int,
        default_size: int = DEFAULT_PAGE_SIZE,
    ) -> KeysetPage:
        """Validate Relay connection arguments; without ``first`` or ``last``, the first page."""
        if first is not None and last is not None:
            raise InvalidInput("pass either 'first' or 'last', not both", field="first")
        for name, value in (("first", first), ("last", last)):
            if value is not None and not 0 <= value <= max_size:
                raise InvalidInput(
                    f"'{name}' must be between 0 and {max_size}, got {value}", field=name
                )
        if last is None and first is None:
            first = min(default_size, max_size)
        return cls(
            first=first,
            after=Cursor.decode(after, field="after") if after else None,
            last=last,
            before=Cursor.decode(before, field="before") if before else None,
        )


@dataclass(frozen=True, slots=True)
class OffsetPage:
    """A REST page: ``page`` counts from 1."""

    page: int = 1
    limit: int = DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


@dataclass(slots=True)
class Page(Generic[T]):
    """Rows of one page, newest first, and whether there are rows on either side."""

    rows: list[T]
    has_next: bool
    has_previous: bool

    @property
    def start_cursor(self) -> Cursor | None:
        return Cursor.of(self.rows[0]) if self.rows else None

    @property
    def end_cursor(self) -> Cursor | None:
        return Cursor.of(self.rows[-1]) if self.rows else None


def page_from_rows(rows: Sequence[T], page: KeysetPage) -> Page[T]:
    """Cut the ``size + 1`` rows a keyset query fetched into a page.

    The extra row only says that there is more in the direction of travel. On
    the other side we answer from the cursor: a page after a cursor has rows
    before it (the cursor's own row, unless it was deleted since), as the
    Relay specification allows when that can't be known cheaply.
    """
    size = page.size
    more = len(rows) > size
    kept = list(rows[:size])
    if page.backward:
        kept.reverse()  # fetched oldest first
        return Page(kept, has_next=page.before is not None, has_previous=more)
    return Page(kept, has_next=more, has_previous=page.after is not None)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """``start <= created_at < end``; either side open."""

    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Every filter of sendme123's ``GET /api/messages`` (seed 002), plus ours.

    ``start_date``/``end_date`` are calendar days in the organization's
    timezone, both inclusive; the service turns them into ``created``.
    """

    content: str | None = None  # case-insensitive "contains" on the body
    content_type: str | None = None
    statuses: tuple[str, ...] | None = None
    sent_at: datetime | None = None  # sent within that second
    recipient: str | None = None  # E.164 phone (with or without "+") or e-mail
    country_code: str | None = None  # calling code, "57" or "+57"
    channels: tuple[str, ...] | None = None  # the seed's messageType
    communication_types: tuple[str, ...] | None = None
    direction: str | None = None
    provider: str | None = None  # the seed's providerId ("twilio")
    campaign_ids: tuple[uuid.UUID, ...] | None = None
    client_ids: tuple[uuid.UUID, ...] | None = None  # the seed's contactId
    queue_id: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    created: TimeRange | None = None


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Coordinalo's log filters (seed 000: from, to, clientId, type, status, campaignId).

    Plus ``channels`` (the email-logs and whatsapp-logs routes) and ``message_ids``.
    """

    created: TimeRange | None = None
    client_ids: tuple[uuid.UUID, ...] | None = None
    communication_types: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    campaign_ids: tuple[uuid.UUID, ...] | None = None
    channels: tuple[str, ...] | None = None
    message_ids: tuple[uuid.UUID, ...] | None = None


@dataclass(frozen=True, slots=True)
class ClientFilter:
    search: str | None = None  # in name, email and phone
    tag_ids: tuple[uuid.UUID, ...] | None = None
    all_tags: bool = False  # carry every tag of ``tag_ids`` (default: any of them)
    has_phone: bool | None = None
    has_email: bool | None = None


@dataclass(frozen=True, slots=True)
class TagFilter:
    search: str | None = None


@dataclass(frozen=True, slots=True)
class CampaignFilter:
    search: str | None = None


@dataclass(frozen=True, slots=True)
class ConversationFilter:
    statuses: tuple[str, ...] | None = None
    client_ids: tuple[uuid.UUID, ...] | None = None
    channels: tuple[str, ...] | None = None
    category: str | None = None
    resolution_outcome: str | None = None


@dataclass(frozen=True, slots=True)
class LogSummary:
    """Coordinalo's ``summary`` of a filtered set of logs.

    ``delivered`` counts attempts that reached the recipient, whatever came
    after (status DELIVERED, READ or RECEIVED, or a recorded delivery time);
    ``opened`` and ``read`` count attempts with those timestamps (READ status
    counts as read); ``bounced`` is status BOUNCED; ``failed`` groups the
    statuses Coordinalo calls failed (FAILED, UNDELIVERED, CANCELED).
    """

    total: int
    delivered: int
    opened: int
    read: int
    bounced: int
    failed: int


def escape_like(value: str) -> str:
    """``value`` as a literal inside a LIKE pattern (escape character ``\\``)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def matches_nothing(*id_filters: tuple[uuid.UUID, ...] | None) -> bool:
    return any(ids is not None and len(ids) == 0 for ids in id_filters)


# The internal statuses each dialect's status name covers (SPEC section 4), for
# the REST doors' ``status`` filters.
COORDINALO_STATUSES: dict[str, tuple[str, ...]] = {
    "pending": ("SCHEDULED", "QUEUED", "SENDING"),
    "sent": ("SENT",),
    "delivered": ("DELIVERED", "RECEIVED"),
    "read": ("READ",),
    "failed": ("UNDELIVERED", "FAILED", "CANCELED"),
    "bounced": ("BOUNCED",),
}
SENDME123_STATUSES: dict[str, tuple[str, ...]] = {
    "SCHEDULED": ("SCHEDULED",),
    "QUEUED": ("QUEUED",),
    "SENDING": ("SENDING",),
    "SENT": ("SENT",),
    "DELIVERED": ("DELIVERED",),
    "READ": ("READ",),
    "UNDELIVERED": ("UNDELIVERED", "BOUNCED"),
    "FAILED": ("FAILED",),
    "CANCELED": ("CANCELED",),
    "RECEIVED": ("RECEIVED",),
}
