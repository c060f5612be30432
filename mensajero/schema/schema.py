"""The schema: one Query/Mutation class per domain, combined here."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry import relay
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from mensajero.resolvers.campaign import CampaignQuery
from mensajero.resolvers.client import ClientQuery
from mensajero.resolvers.client_mutations import ClientMutation
from mensajero.resolvers.conversation import ConversationMutation, ConversationQuery
from mensajero.resolvers.message import MessageQuery
from mensajero.resolvers.messaging import MessagingMutation, MessagingQuery
from mensajero.resolvers.organization import OrganizationMutation, OrganizationQuery
from mensajero.resolvers.report import ReportQuery
from mensajero.resolvers.subscription import MessageSubscription
from mensajero.resolvers.webhook import WebhookMutation, WebhookQuery
from mensajero.schema.errors import graphql_error
from mensajero.schema.limits import code_limit_error, schema_extensions
from mensajero.services.errors import DomainError
from mensajero.settings import get_settings


@strawberry.type
class Query(
    OrganizationQuery,
    ClientQuery,
    MessageQuery,
    CampaignQuery,
    ConversationQuery,
    MessagingQuery,
    WebhookQuery,
    ReportQuery,
):
    node: relay.Node | None = relay.node(
        description="Any object by its global id; another organization's ids answer null."
    )
    nodes: list[relay.Node | None] = relay.node()


@strawberry.type
class Mutation(
    OrganizationMutation,
    ClientMutation,
    MessagingMutation,
    WebhookMutation,
    ConversationMutation,
):
    pass


@strawberry.type
class Subscription(MessageSubscription):
    pass


class SubscriptionEventExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, with a memo of its own for each subscription event.

    graphql-core 3.3 builds each event's executor as a shallow copy of the
    subscription's, so all events share one memo of collected subfields keyed by the
    identity of each event's fresh field lists: it grew by a few entries per event for
    the life of the subscription (a leak, and ever longer garbage collections; at
    500 events/s the API spent a third of its CPU collecting). Within one event the
    memo still serves its purpose: lists of objects collect their subfields once.
    """

    def build_per_event_executor(self, payload: Any) -> SubscriptionEventExecutionContext:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor  # type: ignore[return-value]


class MensajeroSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context=None) -> None:  # type: ignore[no-untyped-def, override]
        # Domain errors raised in resolvers carry their code to the caller.
        for index, error in enumerate(errors):
            code_limit_error(error)
            original = error.original_error
            if isinstance(original, DomainError):
                translated = graphql_error(original)
                error.message = translated.message
                error.extensions = translated.extensions
                errors[index] = error
        # Strawberry logs every error with its traceback at ERROR level. A bad key,
        # a missing scope or a query that does not validate is the caller's answer,
        # not the server's failure: only unexpected exceptions are logged.
        unexpected = [
            error
            for error in errors
            if error.original_error is not None
            and not isinstance(error.original_error, DomainError)
        ]
        if unexpected:
            super().process_errors(unexpected, execution_context)


schema = MensajeroSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    execution_context_class=SubscriptionEventExecutionContext,
    # Parse/validation caches and depth, alias and token limits (schema/limits.py).
    extensions=schema_extensions(get_settings()),
)
