"""Client and tag services: normalization, validation, soft delete, bulk tagging."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import Client, ClientTag, Tag
from mensajero.repositories.client import TagRepository
from mensajero.services import client as client_service
from mensajero.services import tag as tag_service
from mensajero.services.errors import Conflict, InvalidInput, NotFound
from tests.factories import create_client, create_organization, create_tag, tag_client


async def _links(session: AsyncSession, **where: uuid.UUID) -> set[tuple[uuid.UUID, uuid.UUID]]:
    statement = select(ClientTag.client_id, ClientTag.tag_id)
    for column, value in where.items():
        statement = statement.where(getattr(ClientTag, column) == value)
    return {(row[0], row[1]) for row in await session.execute(statement)}


async def _count(session: AsyncSession, model: type, organization_id: uuid.UUID) -> int:
    statement = (
        select(func.count()).select_from(model).where(model.organization_id == organization_id)
    )
    return (await session.execute(statement)).scalar_one()


# --- phones, countries, emails ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("300 123 4567", "CO", "+573001234567"),
        ("(300) 123-4567", "co", "+573001234567"),
        ("+57 300 123 4567", None, "+573001234567"),
        ("+1 (415) 555-2671", "CO", "+14155552671"),  # a prefix wins over the country
        ("91 123 45 67", "ES", "+34911234567"),
    ],
)
def test_phones_are_normalized_to_e164(raw: str, country: str | None, expected: str) -> None:
    normalized_country = client_service.normalize_country(country)
    assert client_service.normalize_phone(raw, country=normalized_country) == expected


@pytest.mark.parametrize(
    ("raw", "country", "message_part"),
    [
        ("3001234567", None, "international prefix"),
        ("12345", "CO", "not a valid phone number in CO"),
        ("+57 12", None, "not a valid phone number"),
        ("call me maybe", "CO", "not a valid phone number"),
    ],
)
def test_invalid_phones_name_the_field(raw: str, country: str | None, message_part: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        client_service.normalize_phone(raw, country=country)
    assert raised.value.field == "phone"
    assert message_part in raised.value.message


def test_parse_phone_e164_answers_none_for_bad_numbers() -> None:
    assert client_service.parse_phone_e164("300 123 4567", "CO") == "+573001234567"
    assert client_service.parse_phone_e164("12345", "CO") is None
    assert client_service.parse_phone_e164("3001234567", None) is None


@pytest.mark.parametrize("raw", ["XX", "COL", "1", "C0"])
def test_unknown_countries_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        client_service.normalize_country(raw)
    assert raised.value.field == "country"


def test_emails_keep_the_local_part_and_lower_the_domain() -> None:
    assert client_service.normalize_email("  Ana.Perez@Example.COM ") == "Ana.Perez@example.com"
    assert client_service.normalize_email("") is None
    for bad in ("ana", "ana@", "ana@example", "a b@example.com"):
        with pytest.raises(InvalidInput) as raised:
            client_service.normalize_email(bad)
        assert raised.value.field == "email"


# --- clients -----------------------------------------------------------------------------


async def test_create_client_normalizes_and_tags(session: AsyncSession) -> None:
    organization = await create_organization(session)
    vip = await create_tag(session, organization, name="VIP")
    client = await client_service.create_client(
        session,
        organization_id=organization.id,
        name="  Juan Pérez ",
        email="Juan@Example.com",
        phone=" 300 123 4567 ",
        country="co",
        metadata={"ventaId": "v-1"},
        tag_ids=[vip.id, vip.id],
    )
    assert client.name == "Juan Pérez"
    assert client.email == "Juan@example.com"
    assert client.phone == "300 123 4567"
    assert client.phone_e164 == "+573001234567"
    assert client.country == "CO"
    assert client.metadata_ == {"ventaId": "v-1"}
    assert client.deleted_at is None
    assert await _links(session, client_id=client.id) == {(client.id, vip.id)}


async def test_create_client_needs_a_phone_or_an_email(session: AsyncSession) -> None:
    organization = await create_organization(session)
    with pytest.raises(InvalidInput):
        await client_service.create_client(session, organization_id=organization.id, name="X")
    only_email = await client_service.create_client(
        session, organization_id=organization.id, email="x@example.com"
    )
    assert only_email.phone is None and only_email.phone_e164 is None


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"phone": "3001234567"}, "phone"),  # no prefix, no country
        ({"phone": "12345", "country": "CO"}, "phone"),
        ({"phone": "+573001234567", "country": "ZZ"}, "country"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@example.com", "metadata": ["not", "an", "object"]}, "metadata"),
        ({"email": "a@example.com", "name": "x" * 201}, "name"),
    ],
)
async def test_create_client_rejects_invalid_input_and_writes_nothing(
    session: AsyncSession, values: dict[str, object], field: str
) -> None:
    organization = await create_organization(session)
    with pytest.raises(InvalidInput) as raised:
        await client_service.create_client(
            session,
            organization_id=organization.id,
            **values,  # type: ignore[arg-type]
        )
    assert raised.value.field == field
    assert await _count(session, Client, organization.id) == 0


async def test_create_client_with_another_organizations_tag_is_not_found(
    session: AsyncSession,
) -> None:
    mine = await create_organization(session)
    theirs = await create_organization(session)
    their_tag = await create_tag(session, theirs)
    with pytest.raises(NotFound) as raised:
        await client_service.create_client(
            session, organization_id=mine.id, email="a@example.com", tag_ids=[their_tag.id]
        )
    assert raised.value.details["ids"] == [their_tag.id]
    assert await _count(session, Client, mine.id) == 0


async def test_update_client_sets_only_what_is_given(session: AsyncSession) -> None:
    organization = await create_organization(session)
    client = await create_client(session, organization, name="Ana", metadata_={"a": 1})
    before = client.updated_at
    updated = await client_service.update_client(
        session,
        organization_id=organization.id,
        client_id=client.id,
        changes={"name": "Ana María", "metadata": {"b": 2}},
    )
    assert updated.name == "Ana María"
    assert updated.metadata_ == {"b": 2}
    assert updated.email == client.email and updated.phone_e164 == client.phone_e164
    assert updated.updated_at >= before


async def test_update_client_phone_and_country_renormalize(session: AsyncSession) -> None:
    organization = await create_organization(session)
    client = await create_client(
        session, organization, phone="3001234567", phone_e164="+573001234567", country="CO"
    )
    updated = await client_service.update_client(
        session,
        organization_id=organization.id,
        client_id=client.id,
        changes={"phone": "415 555 2671", "country": "US"},
    )
    assert (updated.phone, updated.phone_e164, updated.country) == (
        "415 555 2671",
        "+14155552671",
        "US",
    )
    # A new country that makes the kept phone invalid blames the country.
    with pytest.raises(InvalidInput) as raised:
        await client_service.update_client(
            session,
            organization_id=organization.id,
            client_id=client.id,
            changes={"country": "CO"},
        )
    assert raised.value.field == "country"
    # Clearing the phone clears its E.164 form too (the email remains).
    cleared = await client_service.update_client(
        session, organization_id=organization.id, client_id=client.id, changes={"phone": None}
    )
    assert cleared.phone is None and cleared.phone_e164 is None
    with pytest.raises(InvalidInput):
        await client_service.update_client(
            session, organization_id=organization.id, client_id=client.id, changes={"email": None}
        )


async def test_another_organizations_client_is_not_found(session: AsyncSession) -> None:
    mine = await create_organization(session)
    theirs = await create_organization(session)
    their_client = await create_client(session, theirs, name="Theirs")
    with pytest.raises(NotFound):
        await client_service.update_client(
            session, organization_id=mine.id, client_id=their_client.id, changes={"name": "x"}
        )
    with pytest.raises(NotFound):
        await client_service.delete_client(
            session, organization_id=mine.id, client_id=their_client.id
        )
    await session.refresh(their_client)
    assert their_client.name == "Theirs" and their_client.deleted_at is None


async def test_delete_client_is_soft_and_leaves_every_tag(session: AsyncSession) -> None:
    organization = await create_organization(session)
    client = await create_client(session, organization)
    tag = await create_tag(session, organization)
    await tag_client(session, client, tag)
    deleted = await client_service.delete_client(
        session, organization_id=organization.id, client_id=client.id
    )
    assert deleted.deleted_at is not None
    assert await session.get(Client, client.id) is not None
    assert await _links(session, client_id=client.id) == set()
    with pytest.raises(NotFound):
        await client_service.delete_client(
            session, organization_id=organization.id, client_id=client.id
        )
    with pytest.raises(NotFound):
        await client_service.update_client(
            session, organization_id=organization.id, client_id=client.id, changes={"name": "x"}
        )


# --- tags ----------------------------------------------------------------------------------


async def test_create_tag_normalizes_name_and_color(session: AsyncSession) -> None:
    organization = await create_organization(session)
    tag = await tag_service.create_tag(
        session, organization_id=organization.id, name="  Clientes   VIP ", color="1E90FF"
    )
    assert (tag.name, tag.color) == ("Clientes VIP", "#1e90ff")
    with pytest.raises(InvalidInput) as raised:
        await tag_service.create_tag(session, organization_id=organization.id, name="   ")
    assert raised.value.field == "name"
    with pytest.raises(InvalidInput) as raised:
        await tag_service.create_tag(
            session, organization_id=organization.id, name="x", color="blue"
        )
    assert raised.value.field == "color"


async def test_tag_names_are_unique_ignoring_case(session: AsyncSession) -> None:
    organization = await create_organization(session)
    other = await create_organization(session)
    vip = await tag_service.create_tag(session, organization_id=organization.id, name="VIP")
    with pytest.raises(Conflict) as raised:
        await tag_service.create_tag(session, organization_id=organization.id, name="vip")
    assert raised.value.field == "name"
    # Another organization may use the same name.
    await tag_service.create_tag(session, organization_id=other.id, name="VIP")
    # Renaming into a taken name conflicts; changing the case of one's own name does not.
    debt = await tag_service.create_tag(session, organization_id=organization.id, name="Mora")
    with pytest.raises(Conflict):
        await tag_service.update_tag(
            session, organization_id=organization.id, tag_id=debt.id, changes={"name": "Vip"}
        )
    renamed = await tag_service.update_tag(
        session, organization_id=organization.id, tag_id=vip.id, changes={"name": "vip"}
    )
    assert renamed.name == "vip"


async def test_a_concurrent_duplicate_is_a_conflict_not_a_crash(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two requests both passing the name check: the unique constraint decides."""
    organization = await create_organization(session)
    await tag_service.create_tag(session, organization_id=organization.id, name="VIP")

    async def nothing_found(*_args: object, **_kwargs: object) -> None:
        return None  # as if the other request had not committed yet

    monkeypatch.setattr(TagRepository, "get_by_name_ignoring_case", nothing_found)
    with pytest.raises(Conflict):
        await tag_service.create_tag(session, organization_id=organization.id, name="VIP")
    # The same race with another case: the unique index on lower(name) decides.
    with pytest.raises(Conflict):
        await tag_service.create_tag(session, organization_id=organization.id, name="vip")
    # The savepoint kept the surrounding transaction usable.
    session.expunge_all()
    assert await _count(session, Tag, organization.id) == 1


async def test_update_tag_color_only_and_not_found(session: AsyncSession) -> None:
    organization = await create_organization(session)
    other = await create_organization(session)
    tag = await create_tag(session, organization, name="Mora", color="#ff0000")
    updated = await tag_service.update_tag(
        session, organization_id=organization.id, tag_id=tag.id, changes={"color": None}
    )
    assert (updated.name, updated.color) == ("Mora", None)
    with pytest.raises(NotFound):
        await tag_service.update_tag(
            session, organization_id=other.id, tag_id=tag.id, changes={"name": "x"}
        )
    with pytest.raises(NotFound):
        await tag_service.delete_tag(session, organization_id=other.id, tag_id=tag.id)


async def test_delete_tag_removes_its_links_and_keeps_clients(session: AsyncSession) -> None:
    organization = await create_organization(session)
    client = await create_client(session, organization)
    tag = await create_tag(session, organization)
    kept = await create_tag(session, organization)
    await tag_client(session, client, tag)
    await tag_client(session, client, kept)
    await tag_service.delete_tag(session, organization_id=organization.id, tag_id=tag.id)
    assert await session.get(Tag, tag.id) is None
    assert await _links(session, client_id=client.id) == {(client.id, kept.id)}
    assert (await session.get(Client, client.id)) is not None


# --- tagging -------------------------------------------------------------------------------


async def test_tag_clients_links_every_pair_once(session: AsyncSession) -> None:
    organization = await create_organization(session)
    clients = [await create_client(session, organization) for _ in range(3)]
    tags = [await create_tag(session, organization) for _ in range(2)]
    await tag_client(session, clients[0], tags[0])
    result = await tag_service.tag_clients(
        session,
        organization_id=organization.id,
        client_ids=[client.id for client in clients] + [clients[0].id],
        tag_ids=[tag.id for tag in tags],
    )
    assert result.changed == 5  # 6 pairs, one already linked
    assert [client.id for client in result.clients] == [client.id for client in clients]
    assert len(await _links(session)) >= 6
    again = await tag_service.tag_clients(
        session,
        organization_id=organization.id,
        client_ids=[client.id for client in clients],
        tag_ids=[tag.id for tag in tags],
    )
    assert again.changed == 0

    untagged = await tag_service.untag_clients(
        session,
        organization_id=organization.id,
        client_ids=[clients[0].id, clients[1].id],
        tag_ids=[tags[0].id],
    )
    assert untagged.changed == 2
    remaining = await _links(session, tag_id=tags[0].id)
    assert remaining == {(clients[2].id, tags[0].id)}


async def test_tagging_is_all_or_nothing(session: AsyncSession) -> None:
    organization = await create_organization(session)
    theirs = await create_organization(session)
    client = await create_client(session, organization)
    deleted = await create_client(session, organization)
    await client_service.delete_client(
        session, organization_id=organization.id, client_id=deleted.id
    )
    their_client = await create_client(session, theirs)
    tag = await create_tag(session, organization)
    their_tag = await create_tag(session, theirs)
    for client_ids, tag_ids, missing in [
        ([client.id, their_client.id], [tag.id], [their_client.id]),
        ([client.id, deleted.id], [tag.id], [deleted.id]),
        ([client.id], [tag.id, their_tag.id], [their_tag.id]),
    ]:
        with pytest.raises(NotFound) as raised:
            await tag_service.tag_clients(
                session, organization_id=organization.id, client_ids=client_ids, tag_ids=tag_ids
            )
        assert raised.value.details["ids"] == missing
    assert await _links(session, tag_id=tag.id) == set()
    assert await _links(session, client_id=their_client.id) == set()


async def test_tagging_batches_are_bounded(session: AsyncSession) -> None:
    organization = await create_organization(session)
    with pytest.raises(InvalidInput) as raised:
        await tag_service.tag_clients(
            session,
            organization_id=organization.id,
            client_ids=[uuid.uuid4() for _ in range(tag_service.MAX_CLIENTS_PER_CALL + 1)],
            tag_ids=[uuid.uuid4()],
        )
    assert raised.value.field == "clientIds"
    with pytest.raises(InvalidInput) as raised:
        await tag_service.untag_clients(
            session,
            organization_id=organization.id,
            client_ids=[uuid.uuid4()],
            tag_ids=[uuid.uuid4() for _ in range(tag_service.MAX_TAGS_PER_CALL + 1)],
        )
    assert raised.value.field == "tagIds"


async def test_tagging_a_thousand_clients_with_two_tags_spans_insert_chunks(
    session: AsyncSession,
) -> None:
    organization = await create_organization(session)
    clients = [
        Client(organization_id=organization.id, name=f"c{i}", email=f"c{i}@example.com")
        for i in range(1000)
    ]
    session.add_all(clients)
    tags = [await create_tag(session, organization) for _ in range(2)]
    await session.flush()
    result = await tag_service.tag_clients(
        session,
        organization_id=organization.id,
        client_ids=[client.id for client in clients],
        tag_ids=[tag.id for tag in tags],
    )
    assert result.changed == 2000
    assert await _count(session, ClientTag, organization.id) == 2000
