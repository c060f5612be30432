"""The status vocabularies of the legacy APIs, mapped from ours in one place (SPEC section 4).

Every door that shows or filters statuses in another vocabulary goes through
these tables, in both directions: a status shown as ``"failed"`` is found by
filtering on ``"failed"``.

| internal    | sendme123   | Coordinalo |
|-------------|-------------|------------|
| SCHEDULED   | SCHEDULED   | pending    |
| QUEUED      | QUEUED      | pending    |
| SENDING     | SENDING     | pending    |
| SENT        | SENT        | sent       |
| DELIVERED   | DELIVERED   | delivered  |
| READ        | READ        | read       |
| UNDELIVERED | UNDELIVERED | failed     |
| BOUNCED     | UNDELIVERED | bounced    |
| FAILED      | FAILED      | failed     |
| CANCELED    | CANCELED    | failed     |
| RECEIVED    | RECEIVED    | delivered  |
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from mensajero.models import MessageStatus

S = MessageStatus

SENDME123_STATUS: Mapping[str, str] = {
    S.SCHEDULED: "SCHEDULED",
    S.QUEUED: "QUEUED",
    S.SENDING: "SENDING",
    S.SENT: "SENT",
    S.DELIVERED: "DELIVERED",
    S.READ: "READ",
    S.UNDELIVERED: "UNDELIVERED",
    S.BOUNCED: "UNDELIVERED",
    S.FAILED: "FAILED",
    S.CANCELED: "CANCELED",
    S.RECEIVED: "RECEIVED",
}

COORDINALO_STATUS: Mapping[str, str] = {
    S.SCHEDULED: "pending",
    S.QUEUED: "pending",
    S.SENDING: "pending",
    S.SENT: "sent",
    S.DELIVERED: "delivered",
    S.READ: "read",
    S.UNDELIVERED: "failed",
    S.BOUNCED: "bounced",
    S.FAILED: "failed",
    S.CANCELED: "failed",
    S.RECEIVED: "delivered",
}


def _inverse(table: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    inverse: dict[str, list[str]] = defaultdict(list)
    for internal, shown in table.items():
        inverse[shown].append(str(internal))
    return {shown: tuple(internals) for shown, internals in inverse.items()}


_SENDME123_INTERNAL = _inverse(SENDME123_STATUS)
_COORDINALO_INTERNAL = _inverse(COORDINALO_STATUS)

# The values each API accepts and shows, in the order its documentation lists them.
SENDME123_STATUSES: tuple[str, ...] = (
    "QUEUED",
    "SENDING",
    "SENT",
    "DELIVERED",
    "UNDELIVERED",
    "FAILED",
    "RECEIVED",
    "SCHEDULED",
    "CANCELED",
    "READ",
)
COORDINALO_STATUSES: tuple[str, ...] = ("pending", "sent", "delivered", "read", "failed", "bounced")


def to_sendme123(status: str) -> str:
    return SENDME123_STATUS[status]


def to_coordinalo(status: str) -> str:
    return COORDINALO_STATUS[status]


def from_sendme123(status: str) -> tuple[str, ...]:
    """The internal statuses a sendme123 status filter means (``UNDELIVERED`` includes bounces)."""
    return _SENDME123_INTERNAL[status.upper()]


def from_coordinalo(status: str) -> tuple[str, ...]:
    """The internal statuses a Coordinalo status filter means (``pending`` is three of them)."""
    return _COORDINALO_INTERNAL[status.lower()]
