"""mosend's report routes (seed 003): envelopes, auth, 404 for another organization, and
the same figures as the service on the hand-built dataset; on both backends."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.services.test_reports import build_dataset

ORG_NOT_FOUND = {"statusCode": 404, "message": "Organization not found", "error": "Not Found"}


def reports(organization_id: object, path: str) -> str:
    return f"/organizations/{organization_id}/reports{path}"


async def test_summary_envelope_and_figures(http: httpx.AsyncClient, session: AsyncSession) -> None:
    data = await build_dataset(session)
    org_id = data.caller.organization.id
    # X-Api-Key as in the seed's example.
    response = await http.get(reports(org_id, "/summary"), headers={"X-Api-Key": data.caller.key})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"data", "timestamp"} and body["timestamp"].endswith("Z")
    summary = body["data"]
    assert summary["organizationId"] == str(org_id)
    assert (summary["balance"], summary["clients"]) == (955, 3)
    assert summary["messages"] == {"total": 5, "outbound": 4, "inbound": 1}
    conversations = summary["conversations"]
    assert (conversations["total"], conversations["open"], conversations["resolved"]) == (4, 2, 2)
    assert conversations["times"]["medianFirstResponseSeconds"] == 120.0
    assert conversations["times"]["avgResolutionSeconds"] == 900.0
    agents = {a["memberId"]: a for a in summary["agents"]}
    assert agents[str(data.agent_one.id)]["conversations"] == 2
    assert agents[None]["conversations"] == 1
    assert {t["name"]: t["clients"] for t in summary["tags"]} == {"vacía": 0, "vip": 2}


async def test_messaging_billing_and_customers(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    data = await build_dataset(session)
    org_id = data.caller.organization.id
    headers = data.caller.headers  # Bearer
    messaging = await http.get(
        reports(org_id, "/messaging"), params={"since": "2026-03-09"}, headers=headers
    )
    assert messaging.status_code == 200, messaging.text
    items = messaging.json()["data"]
    assert [item["channel"] for item in items] == ["all", "email", "sms", "whatsapp"]
    everything = items[0]
    # A calendar day is Bogota's midnight.
    assert everything["since"] == "2026-03-09T05:00:00.000Z"
    assert everything["outbound"]["deliveryRate"] == 75.0
    assert everything["outbound"]["openRate"] == 33.33
    assert everything["daily"][:2] == [
        {"date": "2026-03-09", "outbound": 1, "inbound": 0, "delivered": 1, "failed": 0},
        {"date": "2026-03-10", "outbound": 3, "inbound": 1, "delivered": 2, "failed": 1},
    ]
    assert everything["byStatus"] == {"BOUNCED": 1, "DELIVERED": 2, "READ": 1, "RECEIVED": 1}
    assert items[3]["responseTimes"]["avgFirstResponseSeconds"] == 120.0

    billing = (await http.get(reports(org_id, "/billing"), headers=headers)).json()["data"]
    assert (billing["balance"], billing["toppedUp"], billing["debited"]) == (955, 1000, 50)
    assert {c["channel"]: c["net"] for c in billing["consumptionByChannel"]} == {
        "email": 20,
        "sms": 25,
        "whatsapp": 0,
    }

    first = await http.get(reports(org_id, "/customers"), params={"limit": 2}, headers=headers)
    assert first.status_code == 200, first.text
    page = first.json()["data"]
    assert [c["id"] for c in page] == [str(data.carla.id), str(data.beto.id)]
    cursor = first.headers["X-Next-Cursor"]
    assert cursor == page[-1]["cursor"]
    second = await http.get(
        reports(org_id, "/customers"), params={"limit": 2, "cursor": cursor}, headers=headers
    )
    assert [c["id"] for c in second.json()["data"]] == [str(data.ana.id)]
    assert "X-Next-Cursor" not in second.headers
    filtered = await http.get(
        reports(org_id, "/customers"),
        params={"category": "ventas", "resolutionOutcome": "sale", "q": "ana"},
        headers=headers,
    )
    assert [c["id"] for c in filtered.json()["data"]] == [str(data.ana.id)]
    bad = await http.get(reports(org_id, "/customers"), params={"limit": 0}, headers=headers)
    assert bad.status_code == 400 and bad.json()["error"] == "Bad Request"

    detail = await http.get(reports(org_id, f"/customers/{data.beto.id}"), headers=headers)
    assert detail.status_code == 200, detail.text
    beto = detail.json()["data"]
    assert beto["metrics"]["byOutcome"] == {"no_sale": 1}
    assert beto["timeline"][0]["type"] == "conversation_resolved"
    missing = await http.get(reports(org_id, f"/customers/{uuid.uuid4()}"), headers=headers)
    assert missing.status_code == 404
    assert missing.json() == {
        "statusCode": 404,
        "message": "Contact not found",
        "error": "Not Found",
    }


async def test_another_organization_is_404_and_no_key_is_401(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    data = await build_dataset(session)
    for path in ("/summary", "/messaging", "/billing", "/customers", f"/customers/{data.ana.id}"):
        # The other organization's caller asking for ours, and a path that is not a UUID.
        foreign = await http.get(
            reports(data.caller.organization.id, path), headers=data.other.headers
        )
        assert (foreign.status_code, foreign.json()) == (404, ORG_NOT_FOUND), path
        garbage = await http.get(reports("nope", path), headers=data.caller.headers)
        assert (garbage.status_code, garbage.json()) == (404, ORG_NOT_FOUND), path
        anonymous = await http.get(reports(data.caller.organization.id, path))
        assert anonymous.status_code == 401
    # The other organization's own figures are its own.
    own = await http.get(
        reports(data.other.organization.id, "/customers"), headers=data.other.headers
    )
    assert [c["name"] for c in own.json()["data"]] == ["Ana Ajena"]
