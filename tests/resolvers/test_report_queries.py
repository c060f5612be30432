"""Report queries over GraphQL on the hand-built dataset: the service's figures, the same
answers as the REST routes, pages that neither skip nor repeat; on both backends."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.resolvers.graphql_helpers import data, execute
from tests.services.test_reports import build_dataset

TIMES = "responded avgFirstResponseSeconds medianFirstResponseSeconds resolved avgResolutionSeconds medianResolutionSeconds"  # noqa: E501

REPORT = f"""
query($since: DateTime) {{
  report {{
    summary {{
      balance clients messagesTotal
      conversations {{ total open resolved unassigned times {{ {TIMES} }} }}
      agents {{ memberId conversations times {{ medianFirstResponseSeconds }} }}
      tags {{ name clients messages conversations }}
    }}
    messaging(since: $since) {{
      since outbound {{ total deliveryRate openRate readRate bounceRate }} inbound
      byStatus {{ key count }}
      byDay {{ day outbound inbound delivered failed }}
      byChannel {{ channel outbound {{ total }} responseTimes {{ avgFirstResponseSeconds }} }}
    }}
    billing {{ balance toppedUp debited refunded consumptionByChannel {{ channel net }} }}
  }}
  viewer {{ report {{ billing {{ balance }} }} }}
}}
"""

CUSTOMERS = f"""
query($first: Int!, $after: String, $filter: CustomerReportFilter) {{
  report {{
    customers(first: $first, after: $after, filter: $filter) {{
      edges {{ cursor node {{ clientId name conversations open resolved times {{ {TIMES} }} }} }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
"""


async def test_report_figures_and_rest_agree(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    dataset = await build_dataset(session)
    caller = dataset.caller
    answer = await data(http, caller, REPORT, {"since": "2026-03-09T05:00:00Z"})
    report = answer["report"]
    summary = report["summary"]
    assert (summary["balance"], summary["clients"], summary["messagesTotal"]) == (955, 3, 5)
    assert summary["conversations"]["times"] == {
        "responded": 3,
        "avgFirstResponseSeconds": 120.0,
        "medianFirstResponseSeconds": 120.0,
        "resolved": 2,
        "avgResolutionSeconds": 900.0,
        "medianResolutionSeconds": 900.0,
    }
    agents = {a["memberId"]: a for a in summary["agents"]}
    assert agents[str(dataset.agent_one.id)]["times"]["medianFirstResponseSeconds"] == 120.0
    messaging = report["messaging"]
    assert messaging["outbound"] == {
        "total": 4,
        "deliveryRate": 75.0,
        "openRate": 33.33,
        "readRate": 33.33,
        "bounceRate": 25.0,
    }
    assert messaging["byDay"][:2] == [
        {"day": "2026-03-09", "outbound": 1, "inbound": 0, "delivered": 1, "failed": 0},
        {"day": "2026-03-10", "outbound": 3, "inbound": 1, "delivered": 2, "failed": 1},
    ]
    assert {s["key"]: s["count"] for s in messaging["byStatus"]} == {
        "BOUNCED": 1,
        "DELIVERED": 2,
        "READ": 1,
        "RECEIVED": 1,
    }
    assert answer["viewer"]["report"]["billing"]["balance"] == 955

    # The REST route gives the same figures for the same data.
    org_id = caller.organization.id
    rest = (
        await http.get(
            f"/organizations/{org_id}/reports/messaging",
            params={"since": "2026-03-09T05:00:00Z"},
            headers=caller.headers,
        )
    ).json()["data"][0]
    assert rest["outbound"]["deliveryRate"] == messaging["outbound"]["deliveryRate"]
    assert [d["outbound"] for d in rest["daily"]] == [d["outbound"] for d in messaging["byDay"]]
    rest_billing = (
        await http.get(f"/organizations/{org_id}/reports/billing", headers=caller.headers)
    ).json()["data"]
    assert {c["channel"]: c["net"] for c in rest_billing["consumptionByChannel"]} == {
        c["channel"]: c["net"] for c in report["billing"]["consumptionByChannel"]
    }


async def test_customer_pages_neither_skip_nor_repeat(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    dataset = await build_dataset(session)
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        answer = await data(http, dataset.caller, CUSTOMERS, {"first": 1, "after": after})
        connection = answer["report"]["customers"]
        seen += [edge["node"]["clientId"] for edge in connection["edges"]]
        pages += 1
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == [str(dataset.carla.id), str(dataset.beto.id), str(dataset.ana.id)]
    assert pages == 3
    ventas = await data(
        http, dataset.caller, CUSTOMERS, {"first": 10, "filter": {"category": "ventas"}}
    )
    nodes = [edge["node"] for edge in ventas["report"]["customers"]["edges"]]
    assert [(n["name"], n["conversations"]) for n in nodes] == [("Beto Ruiz", 1), ("Ana Pérez", 1)]
    bad = await execute(http, dataset.caller, CUSTOMERS, {"first": 1, "after": "garbage"})
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_customer_detail_stats_and_client_summary(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    dataset = await build_dataset(session)
    query = """
    query($id: ID!, $foreign: ID!) {
      report {
        customer(id: $id) {
          name byOutcome { key count } outbound { total bounced } inbound
          timeline { kind }
        }
        stranger: customer(id: $foreign) { name }
        communicationStats(from: "2026-03-09", to: "2026-03-10", groupBy: "day") {
          from to totals { sent delivered deliveryRate }
          periods { start metrics { sent delivered } }
          byChannel { name metrics { sent } }
        }
        agents { memberId conversations }
        tags(since: "2026-03-01T00:00:00Z") { name clients messages conversations }
      }
      communicationStats(from: "2026-03-09", to: "2026-03-10") { totals { sent } }
      client(id: $id) { ... on Client { communicationSummary { total byChannel { key count } deliveryRate } } }
    }
    """  # noqa: E501
    other_client = (await build_other_client(session, dataset)).id
    answer = await data(
        http, dataset.caller, query, {"id": str(dataset.beto.id), "foreign": str(other_client)}
    )
    report = answer["report"]
    assert report["customer"]["byOutcome"] == [{"key": "no_sale", "count": 1}]
    assert report["customer"]["outbound"] == {"total": 1, "bounced": 1}
    assert report["customer"]["inbound"] == 1
    assert report["customer"]["timeline"][0]["kind"] == "conversation_resolved"
    assert report["stranger"] is None
    stats = report["communicationStats"]
    assert [(p["start"], p["metrics"]["sent"]) for p in stats["periods"]] == [
        ("2026-03-09", 1),
        ("2026-03-10", 3),
    ]
    assert stats["totals"] == {"sent": 4, "delivered": 3, "deliveryRate": 75.0}
    assert answer["communicationStats"]["totals"]["sent"] == 4
    assert [a["conversations"] for a in report["agents"]] == [2, 1, 1]
    assert {
        t["name"]: (t["clients"], t["messages"], t["conversations"]) for t in report["tags"]
    } == {
        "vip": (2, 4, 3),
        "vacía": (0, 0, 0),
    }
    summary = answer["client"]["communicationSummary"]
    assert summary["total"] == 1 and summary["deliveryRate"] == 0.0
    assert summary["byChannel"] == [{"key": "email", "count": 1}]


async def build_other_client(session: AsyncSession, dataset):
    from tests.factories import create_client

    return await create_client(session, dataset.other.organization, name="Ajeno")
