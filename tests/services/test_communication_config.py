from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.services import communication_config as config_service
from mensajero.services.communication_config import quiet_hours_deferral
from mensajero.services.errors import InvalidInput
from tests.factories import create_organization


def _config(start: str, end: str, timezone: str | None = None, enabled: bool = True) -> dict:
    return {
        "preferences": {
            "quietHours": {"enabled": enabled, "start": start, "end": end, "timezone": timezone}
        }
    }


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Santiago is UTC-4 in July (winter) and UTC-3 in January (summer).
        (datetime(2026, 7, 15, 3, 0, tzinfo=UTC), datetime(2026, 7, 15, 12, 0, tzinfo=UTC)),
        (datetime(2026, 7, 15, 1, 59, tzinfo=UTC), None),  # 21:59 local: before the window
        (datetime(2026, 7, 15, 2, 0, tzinfo=UTC), datetime(2026, 7, 15, 12, 0, tzinfo=UTC)),
        (datetime(2026, 7, 15, 9, 0, tzinfo=UTC), datetime(2026, 7, 15, 12, 0, tzinfo=UTC)),
        (datetime(2026, 7, 15, 12, 0, tzinfo=UTC), None),  # 08:00 local: the window is over
        (datetime(2026, 1, 15, 2, 0, tzinfo=UTC), datetime(2026, 1, 15, 11, 0, tzinfo=UTC)),
    ],
)
def test_window_crossing_midnight_in_its_own_time_zone(
    now: datetime, expected: datetime | None
) -> None:
    assert quiet_hours_deferral(_config("22:00", "08:00", "America/Santiago"), "UTC", now) == (
        expected
    )


def test_the_end_stays_at_local_wall_time_across_a_dst_change() -> None:
    # Chile moves clocks back on the night of 2026-04-04/05 (UTC-3 -> UTC-4):
    # 23:00 local on the 4th is 02:00 UTC; 08:00 local on the 5th is 12:00 UTC.
    now = datetime(2026, 4, 5, 2, 0, tzinfo=UTC)
    end = quiet_hours_deferral(_config("22:00", "08:00", "America/Santiago"), "UTC", now)
    assert end == datetime(2026, 4, 5, 12, 0, tzinfo=UTC)


def test_same_day_window_and_organization_time_zone_fallback() -> None:
    config = _config("12:00", "14:00")  # no zone: the organization's
    noon_bogota = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)  # 12:30 in Bogotá (UTC-5)
    assert quiet_hours_deferral(config, "America/Bogota", noon_bogota) == datetime(
        2026, 3, 1, 19, 0, tzinfo=UTC
    )
    assert quiet_hours_deferral(config, "UTC", noon_bogota) is None


def test_disabled_or_empty_windows_never_defer() -> None:
    now = datetime(2026, 7, 15, 3, 0, tzinfo=UTC)
    assert quiet_hours_deferral(_config("22:00", "08:00", enabled=False), "UTC", now) is None
    assert quiet_hours_deferral(_config("08:00", "08:00"), "UTC", now) is None


async def test_partial_update_keeps_what_is_not_given(session: AsyncSession) -> None:
    organization = await create_organization(session)
    before = await config_service.get_config(session, organization_id=organization.id)

    after = await config_service.update_config(
        session,
        organization_id=organization.id,
        changes={
            "email": {"fromName": "Mi Centro de Salud", "replyTo": "contacto@centro.cl"},
            "preferences": {
                "defaultChannel": "email",
                "quietHours": {"enabled": True, "start": "21:00", "end": "09:00"},
            },
        },
    )
    again = await config_service.update_config(
        session,
        organization_id=organization.id,
        changes={"preferences": {"quietHours": {"timezone": "America/Santiago"}}},
    )

    assert after["email"]["fromName"] == "Mi Centro de Salud"
    assert after["email"]["fromEmail"] == before["email"]["fromEmail"]
    assert after["whatsapp"] == before["whatsapp"]
    assert again["preferences"]["defaultChannel"] == "email"
    assert again["preferences"]["quietHours"] == {
        "enabled": True,
        "start": "21:00",
        "end": "09:00",
        "timezone": "America/Santiago",
    }
    assert await config_service.get_config(session, organization_id=organization.id) == again


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"preferences": {"quietHours": {"start": "7:00"}}}, "preferences.quietHours.start"),
        ({"preferences": {"quietHours": {"timezone": "Chile"}}}, "preferences.quietHours.timezone"),
        ({"preferences": {"defaultChannel": "fax"}}, "preferences.defaultChannel"),
        ({"email": {"status": "active"}}, "email.status"),
        ({"email": {"replyTo": "not-an-email"}}, "email.replyTo"),
        ({"whatsapp": {"phoneNumber": "12"}}, "whatsapp.phoneNumber"),
        ({"sms": {}}, "sms"),
        (
            {"preferences": {"fallbackEnabled": True, "fallbackChannel": "whatsapp"}},
            "preferences.fallbackChannel",
        ),
    ],
)
async def test_invalid_updates_name_the_field(
    session: AsyncSession, changes: dict, field: str
) -> None:
    organization = await create_organization(session)
    with pytest.raises(InvalidInput) as raised:
        await config_service.update_config(
            session, organization_id=organization.id, changes=changes
        )
    assert raised.value.field == field
