"""API keys and the authenticated caller (SPEC section 5)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mensajero.models import ApiKeyScope, utcnow
from mensajero.repositories import organization as organization_repository
from mensajero.services.errors import Forbidden, TermsNotAccepted, Unauthenticated

KEY_PREFIX_LENGTH = 12
# last_used_at is written at most this often per key, so a busy key does not
# turn every read request into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Compared against when the prefix is unknown, so both paths take the same time.
_DUMMY_HASH = hashlib.sha256(b"mensajero-dummy").hexdigest()


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    prefix: str
    secret_hash: str
    plaintext: str


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: every read and write is scoped to ``organization_id``."""

    organization_id: uuid.UUID
    member_id: uuid.UUID
    api_key_id: uuid.UUID
    scopes: frozenset[str]
    terms_accepted: bool
    key_expires_at: datetime | None = None

    def require_scope(self, scope: ApiKeyScope) -> None:
        if scope not in self.scopes and ApiKeyScope.ADMIN not in self.scopes:
            raise Forbidden(f"this API key lacks the '{scope}' scope", scope=str(scope))

    def require_terms(self) -> None:
        if not self.terms_accepted:
            raise TermsNotAccepted("the member has not accepted the organization's current terms")


def hash_secret(secret: str) -> str:
    # The secret is 256 random bits: a fast hash is enough (as GitHub and
    # Stripe tokens), and it keeps authentication off the CPU budget.
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_api_key(environment: str = "live") -> GeneratedKey:
    prefix = secrets.token_hex(KEY_PREFIX_LENGTH // 2)
    secret = secrets.token_urlsafe(32)
    return GeneratedKey(
        prefix=prefix,
        secret_hash=hash_secret(secret),
        plaintext=f"mk_{environment}_{prefix}.{secret}",
    )


def parse_api_key(raw: str) -> tuple[str, str] | None:
    """Split ``mk_<env>_<prefix>.<secret>`` into prefix and secret, or None if malformed."""
    if not raw.startswith("mk_"):
        return None
    head, dot, secret = raw.partition(".")
    if not dot or not secret:
        return None
    parts = head.split("_")
    if len(parts) != 3 or parts[1] not in ("live", "test") or len(parts[2]) != KEY_PREFIX_LENGTH:
        return None
    return parts[2], secret


def extract_api_key(headers: Mapping[str, str]) -> str | None:
    """The key from any of the three header styles the seeds use.

    ``headers`` must be case-insensitive (Starlette's Headers) or lower-cased.
    """
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    for name in ("x-api-key", "api-key"):
        value = headers.get(name)
        if value and value.strip():
            return value.strip()
    return None


def extract_api_key_from_payload(payload: Mapping[str, object] | None) -> str | None:
    """The key from a websocket ``connection_init`` payload, under any header name."""
    if not payload:
        return None
    lowered = {str(k).lower(): v for k, v in payload.items() if isinstance(v, str)}
    headers = payload.get("headers")
    if isinstance(headers, Mapping):
        lowered.update({str(k).lower(): v for k, v in headers.items() if isinstance(v, str)})
    return extract_api_key(lowered)


async def authenticate(
    session: AsyncSession, raw_key: str | None, *, now: datetime | None = None
) -> Principal:
    if not raw_key:
        raise Unauthenticated("missing API key")
    parsed = parse_api_key(raw_key)
    if parsed is None:
        hmac.compare_digest(_DUMMY_HASH, hash_secret(raw_key))
        raise Unauthenticated("invalid API key")
    prefix, secret = parsed
    found = await organization_repository.get_api_key_with_owner(session, prefix)
    presented_hash = hash_secret(secret)
    stored_hash = found[0].secret_hash if found else _DUMMY_HASH
    if not hmac.compare_digest(presented_hash, stored_hash) or found is None:
        raise Unauthenticated("invalid API key")
    api_key, member, organization = found
    now = now or utcnow()
    if api_key.revoked_at is not None:
        raise Unauthenticated("API key revoked")
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise Unauthenticated("API key expired")
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        await organization_repository.touch_api_key(session, api_key.id, now)
    return Principal(
        organization_id=organization.id,
        member_id=member.id,
        api_key_id=api_key.id,
        scopes=frozenset(api_key.scopes),
        terms_accepted=member.terms_accepted_version == organization.terms_version,
        key_expires_at=api_key.expires_at,
    )


class PrincipalCache:
    """Recently authenticated keys, so a busy key does not cost a transaction per request.

    Entries live ``ttl_seconds`` (a few seconds): revocations and terms
    acceptances made in this process drop their entries at once; those made by
    another process take effect within the TTL. Keys are cached under the hash
    of the whole key, never in clear.
    """

    def __init__(self, *, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Principal, float]] = {}

    def get(self, raw_key: str, *, now: datetime) -> Principal | None:
        digest = hash_secret(raw_key)
        entry = self._entries.get(digest)
        if entry is None:
            return None
        principal, valid_until = entry
        expires_at = principal.key_expires_at
        if time.monotonic() >= valid_until or (expires_at is not None and expires_at <= now):
            self._entries.pop(digest, None)
            return None
        return principal

    def put(self, raw_key: str, principal: Principal, *, ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # rare and cheap to refill; keeps memory bounded
        self._entries[hash_secret(raw_key)] = (principal, time.monotonic() + ttl_seconds)

    def forget(
        self, *, api_key_id: uuid.UUID | None = None, member_id: uuid.UUID | None = None
    ) -> None:
        stale = [
            digest
            for digest, (principal, _) in self._entries.items()
            if principal.api_key_id == api_key_id or principal.member_id == member_id
        ]
        for digest in stale:
            self._entries.pop(digest, None)

    def clear(self) -> None:
        self._entries.clear()


principal_cache = PrincipalCache()


async def authenticate_request_key(
    sessionmaker: async_sessionmaker[AsyncSession],
    raw_key: str | None,
    *,
    ttl_seconds: float,
) -> Principal:
    """The doors' entry point: a cached caller, or :func:`authenticate` in its own transaction."""
    now = utcnow()
    if raw_key:
        cached = principal_cache.get(raw_key, now=now)
        if cached is not None:
            return cached
    async with sessionmaker() as session:
        principal = await authenticate(session, raw_key, now=now)
        await session.commit()
    assert raw_key is not None  # authenticate raised otherwise
    principal_cache.put(raw_key, principal, ttl_seconds=ttl_seconds)
    return principal


def normalize_scopes(scopes: Iterable[str]) -> list[str]:
    valid = {scope.value for scope in ApiKeyScope}
    result = sorted({scope.lower() for scope in scopes})
    unknown = [scope for scope in result if scope not in valid]
    if unknown:
        from mensajero.services.errors import InvalidInput

        raise InvalidInput(f"unknown scopes: {', '.join(unknown)}", field="scopes")
    return result
