"""GraphQL enums, generated from the domain's own enums so the two never drift.

GraphQL shows the member names (``DELIVERED``, ``SMS``, ``SESSION_REMINDER``);
resolvers receive and return the domain enum members.
"""

from __future__ import annotations

import strawberry

from mensajero import models

Channel = strawberry.enum(
    models.Channel, name="Channel", description="A delivery channel (the seeds' messageType)."
)
MessageStatus = strawberry.enum(
    models.MessageStatus, name="MessageStatus", description="Status of a delivery attempt."
)
CommunicationType = strawberry.enum(
    models.CommunicationType,
    name="CommunicationType",
    description="What a communication is for (Coordinalo's `type`).",
)
ContentType = strawberry.enum(models.ContentType, name="ContentType")
Direction = strawberry.enum(models.Direction, name="Direction")
TimelineEventType = strawberry.enum(models.TimelineEventType, name="TimelineEventType")
ConversationStatus = strawberry.enum(models.ConversationStatus, name="ConversationStatus")
