from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mensajero.db import create_sessionmaker
from mensajero.models import ApiKey, ApiKeyScope, utcnow
from mensajero.services import organization as organization_service
from mensajero.services.auth import (
    LAST_USED_RESOLUTION,
    authenticate,
    authenticate_request_key,
    extract_api_key,
    extract_api_key_from_payload,
    generate_api_key,
    hash_secret,
    parse_api_key,
    principal_cache,
)
from mensajero.services.errors import Forbidden, TermsNotAccepted, Unauthenticated
from tests.factories import create_caller


def test_generated_key_has_the_documented_shape_and_only_its_hash_is_kept() -> None:
    generated = generate_api_key("live")
    assert generated.plaintext.startswith(f"mk_live_{generated.prefix}.")
    secret = generated.plaintext.split(".", 1)[1]
    assert parse_api_key(generated.plaintext) == (generated.prefix, secret)
    assert generated.secret_hash == hash_secret(secret)
    assert secret not in generated.secret_hash


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "mk_live_abc.def",
        "sk_live_0123456789ab.secret",
        "mk_prod_0123456789ab.secret",
        "mk_live_0123456789ab",
        "mk_live_0123456789ab.",
        "Bearer mk_live_0123456789ab.x",
    ],
)
def test_malformed_keys_do_not_parse(raw: str) -> None:
    assert parse_api_key(raw) is None


def test_the_three_header_styles_of_the_seeds_are_accepted() -> None:
    assert extract_api_key({"authorization": "Bearer k1"}) == "k1"
    assert extract_api_key({"authorization": "bearer  k2 "}) == "k2"
    assert extract_api_key({"x-api-key": "k3"}) == "k3"
    assert extract_api_key({"api-key": "k4"}) == "k4"
    assert extract_api_key({"authorization": "Basic abc"}) is None
    assert extract_api_key({}) is None
    assert extract_api_key_from_payload({"X-Api-Key": "k5"}) == "k5"
    assert extract_api_key_from_payload({"headers": {"Authorization": "Bearer k6"}}) == "k6"
    assert extract_api_key_from_payload({"api-key": "k7"}) == "k7"
    assert extract_api_key_from_payload(None) is None


async def test_a_valid_key_authenticates_to_its_organization(session: AsyncSession) -> None:
    caller = await create_caller(session, scopes=["read"])
    principal = await authenticate(session, caller.key)
    assert principal.organization_id == caller.organization.id
    assert principal.member_id == caller.member.id
    assert principal.scopes == frozenset({"read"})
    assert principal.terms_accepted


async def test_wrong_secret_unknown_prefix_and_garbage_are_rejected(session: AsyncSession) -> None:
    caller = await create_caller(session)
    wrong_secret = caller.key.rsplit(".", 1)[0] + ".not-the-secret"
    unknown_prefix = "mk_live_ffffffffffff." + caller.key.rsplit(".", 1)[1]
    for raw in (wrong_secret, unknown_prefix, "garbage", None, ""):
        with pytest.raises(Unauthenticated):
            await authenticate(session, raw)


async def test_a_revoked_key_is_rejected(session: AsyncSession) -> None:
    caller = await create_caller(session)
    await organization_service.revoke_api_key(
        session, organization_id=caller.organization.id, api_key_id=caller.api_key.id
    )
    with pytest.raises(Unauthenticated, match="revoked"):
        await authenticate(session, caller.key)


async def test_an_expired_key_is_rejected(session: AsyncSession) -> None:
    caller = await create_caller(session)
    caller.api_key.expires_at = utcnow() - timedelta(seconds=1)
    await session.flush()
    with pytest.raises(Unauthenticated, match="expired"):
        await authenticate(session, caller.key)


async def test_last_use_is_recorded_at_most_once_per_resolution(session: AsyncSession) -> None:
    caller = await create_caller(session)
    first = utcnow()
    await authenticate(session, caller.key, now=first)
    await session.refresh(caller.api_key)
    assert caller.api_key.last_used_at == first
    await authenticate(session, caller.key, now=first + timedelta(seconds=5))
    await session.refresh(caller.api_key)
    assert caller.api_key.last_used_at == first
    later = first + LAST_USED_RESOLUTION
    await authenticate(session, caller.key, now=later)
    await session.refresh(caller.api_key)
    assert caller.api_key.last_used_at == later


async def test_scopes_and_terms_are_enforced(session: AsyncSession) -> None:
    reader = await authenticate(session, (await create_caller(session, scopes=["read"])).key)
    reader.require_scope(ApiKeyScope.READ)
    with pytest.raises(Forbidden):
        reader.require_scope(ApiKeyScope.SEND)
    admin = await authenticate(session, (await create_caller(session, scopes=["admin"])).key)
    admin.require_scope(ApiKeyScope.SEND)  # admin implies every scope
    newcomer = await authenticate(session, (await create_caller(session, terms_accepted=False)).key)
    with pytest.raises(TermsNotAccepted):
        newcomer.require_terms()


async def test_the_key_secret_is_never_stored(session: AsyncSession) -> None:
    caller = await create_caller(session)
    stored = await session.get(ApiKey, caller.api_key.id)
    assert stored is not None
    secret = caller.key.split(".", 1)[1]
    assert secret not in stored.secret_hash
    assert stored.secret_hash == hash_secret(secret)


async def test_the_doors_cache_a_key_for_a_few_seconds_and_forget_it_on_revoke(
    connection: AsyncConnection, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    await session.commit()
    sessionmaker = create_sessionmaker(connection)
    principal_cache.clear()
    first = await authenticate_request_key(sessionmaker, caller.key, ttl_seconds=30)
    assert first.organization_id == caller.organization.id

    # Revoked behind this process's back (as another API process would): the
    # cached caller is still trusted until its entry expires or is forgotten.
    await session.execute(
        update(ApiKey).where(ApiKey.id == caller.api_key.id).values(revoked_at=utcnow())
    )
    await session.commit()
    assert await authenticate_request_key(sessionmaker, caller.key, ttl_seconds=30) == first

    principal_cache.forget(api_key_id=caller.api_key.id)
    with pytest.raises(Unauthenticated, match="revoked"):
        await authenticate_request_key(sessionmaker, caller.key, ttl_seconds=30)


async def test_revoking_through_the_service_drops_the_cached_key_at_once(
    connection: AsyncConnection, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    await session.commit()
    sessionmaker = create_sessionmaker(connection)
    await authenticate_request_key(sessionmaker, caller.key, ttl_seconds=30)
    await organization_service.revoke_api_key(
        session, organization_id=caller.organization.id, api_key_id=caller.api_key.id
    )
    await session.commit()
    with pytest.raises(Unauthenticated, match="revoked"):
        await authenticate_request_key(sessionmaker, caller.key, ttl_seconds=30)


async def test_a_zero_ttl_disables_the_cache_and_expiry_is_honoured(
    connection: AsyncConnection, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    caller.api_key.expires_at = utcnow() + timedelta(milliseconds=300)
    await session.commit()
    sessionmaker = create_sessionmaker(connection)
    principal_cache.clear()
    await authenticate_request_key(sessionmaker, caller.key, ttl_seconds=0)
    assert principal_cache.get(caller.key, now=utcnow()) is None
    await authenticate_request_key(sessionmaker, caller.key, ttl_seconds=30)
    assert principal_cache.get(caller.key, now=utcnow()) is not None
    assert principal_cache.get(caller.key, now=utcnow() + timedelta(seconds=1)) is None
