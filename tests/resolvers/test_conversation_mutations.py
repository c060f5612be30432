"""Working conversations over GraphQL: assign, categorize, resolve, reopen; on both backends."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import utcnow
from tests.factories import create_caller, create_client, create_conversation, create_member
from tests.resolvers.graphql_helpers import data, execute

RESULT = """
  __typename
  ... on ConversationPayload {
    conversation { uuid status category assignedMemberId resolutionOutcome
                   resolvedAt resolutionSeconds firstResponseSeconds }
  }
  ... on NotFoundError { code message ids }
  ... on InvalidInputError { code field message }
"""
ASSIGN = (
    "mutation($id: ID!, $member: ID) {"
    f" assignConversation(id: $id, memberId: $member) {{ {RESULT} }} }}"
)
CATEGORIZE = (
    "mutation($id: ID!, $c: String) {"
    f" categorizeConversation(id: $id, category: $c) {{ {RESULT} }} }}"
)
RESOLVE = (
    "mutation($id: ID!, $o: String!) {"
    f" resolveConversation(id: $id, outcome: $o) {{ {RESULT} }} }}"
)
REOPEN = f"mutation($id: ID!) {{ reopenConversation(id: $id) {{ {RESULT} }} }}"


async def test_assign_categorize_resolve_and_reopen(
    session: AsyncSession, http: httpx.AsyncClient
) -> None:
    caller = await create_caller(session)
    agent = await create_member(session, caller.organization, name="Ana")
    client = await create_client(session, caller.organization)
    opened = utcnow() - timedelta(hours=2)
    conversation = await create_conversation(
        session, caller.organization, client, opened_at=opened, first_response_seconds=90
    )
    cid = str(conversation.id)

    assigned = (await data(http, caller, ASSIGN, {"id": cid, "member": str(agent.id)}))[
        "assignConversation"
    ]
    assert assigned["conversation"]["assignedMemberId"] == str(agent.id)

    categorized = (await data(http, caller, CATEGORIZE, {"id": cid, "c": "  ventas "}))[
        "categorizeConversation"
    ]
    assert categorized["conversation"]["category"] == "ventas"

    resolved = (await data(http, caller, RESOLVE, {"id": cid, "o": "sale"}))["resolveConversation"]
    node = resolved["conversation"]
    assert node["status"] == "RESOLVED" and node["resolutionOutcome"] == "sale"
    # Two hours from the opening, within the seconds the request took.
    assert 7200 <= node["resolutionSeconds"] < 7200 + 60
    assert node["firstResponseSeconds"] == 90

    # Resolving again changes the outcome only.
    again = (await data(http, caller, RESOLVE, {"id": cid, "o": "solved"}))["resolveConversation"]
    assert again["conversation"]["resolvedAt"] == node["resolvedAt"]
    assert again["conversation"]["resolutionOutcome"] == "solved"

    reopened = (await data(http, caller, REOPEN, {"id": cid}))["reopenConversation"]
    assert reopened["conversation"]["status"] == "OPEN"
    assert reopened["conversation"]["resolvedAt"] is None
    assert reopened["conversation"]["resolutionOutcome"] is None
    assert reopened["conversation"]["firstResponseSeconds"] == 90

    unassigned = (await data(http, caller, ASSIGN, {"id": cid, "member": None}))[
        "assignConversation"
    ]
    assert unassigned["conversation"]["assignedMemberId"] is None


async def test_errors_are_data_and_organizations_are_isolated(
    session: AsyncSession, http: httpx.AsyncClient
) -> None:
    caller = await create_caller(session)
    other = await create_caller(session)
    client = await create_client(session, other.organization)
    foreign = await create_conversation(session, other.organization, client)
    own = await create_conversation(
        session, caller.organization, await create_client(session, caller.organization)
    )

    missing = (await data(http, caller, RESOLVE, {"id": str(foreign.id), "o": "sale"}))[
        "resolveConversation"
    ]
    assert missing["__typename"] == "NotFoundError" and missing["code"] == "NOT_FOUND"
    # Another organization's member cannot be assigned.
    foreign_member = (
        await data(http, caller, ASSIGN, {"id": str(own.id), "member": str(other.member.id)})
    )["assignConversation"]
    assert foreign_member["__typename"] == "NotFoundError"
    assert foreign_member["ids"] == [str(other.member.id)]
    blank = (await data(http, caller, RESOLVE, {"id": str(own.id), "o": "  "}))[
        "resolveConversation"
    ]
    assert blank["__typename"] == "InvalidInputError" and blank["field"] == "outcome"
    unknown = (await data(http, caller, REOPEN, {"id": str(uuid.uuid4())}))["reopenConversation"]
    assert unknown["__typename"] == "NotFoundError"
    # The other organization's conversation is untouched.
    await session.refresh(foreign)
    assert foreign.status == "open" and foreign.resolution_outcome is None


async def test_read_scope_cannot_work_conversations(
    session: AsyncSession, http: httpx.AsyncClient
) -> None:
    caller = await create_caller(session, scopes=["read"])
    client = await create_client(session, caller.organization)
    conversation = await create_conversation(session, caller.organization, client)
    body = await execute(http, caller, REOPEN, {"id": str(conversation.id)})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
