"""Subscriptions over graphql-transport-ws with shared execution and per-socket backpressure.

Strawberry's stock handler runs one ``schema.subscribe`` per subscriber: with N dashboards
watching the same organization, every event's selection is executed, serialized and
loaded from the database N times. Here subscribers whose operations are the same
(same organization and scopes, same normalized document, variables and operation name)
share ONE execution: the result of each event is serialized once and the frame written
to every socket of the group.

Each socket has a bounded outbox. A client that cannot keep up (its outbox overflows)
is told with an ``error`` message on each of its subscriptions (code
``SLOW_CONSUMER``) and disconnected with close code 1008, rather than slowing the
others or growing memory without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSyntaxError,
    OperationType,
    get_operation_ast,
    parse,
    print_ast,
)
from starlette.websockets import WebSocket
from strawberry.schema import BaseSchema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from mensajero.schema.context import Context
from mensajero.schema.frames import DirectFrameWriter

logger = logging.getLogger("mensajero.subscriptions")

SLOW_CONSUMER_CLOSE_CODE = 1008
SLOW_CONSUMER_CODE = "SLOW_CONSUMER"
# How long a slow client gets to take its error message before the socket is cut.
SLOW_CONSUMER_GRACE_SECONDS = 5.0

# A shared execution's key: (organization, scopes, normalized document, variables, name).
GroupKey = tuple[uuid.UUID, frozenset[str], str, bytes, str | None]


@lru_cache(maxsize=1024)
def _normalized_subscription(query: str, operation_name: str | None) -> str | None:
    """The printed document if ``query`` is a subscription operation, else None.

    Printing the parsed document makes two clients that format the same operation
    differently share one execution. Cached: dashboards send the same text.
    """
    try:
        document: DocumentNode = parse(query)
    except GraphQLSyntaxError:
        return None  # the stock path answers syntax errors as the protocol says
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation != OperationType.SUBSCRIPTION:
        return None
    return print_ast(document)


def _encode_payload(result: ExecutionResult) -> bytes:
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return orjson.dumps(payload)


# Frames handed to the transport per write when a backlog drains: small enough that
# a paused transport (a slow reader) is noticed between chunks.
_DRAIN_CHUNK = 16


class SocketOutbox:
    """Frames (UTF-8 JSON text) for one websocket, written in order.

    A frame is written at once, from the caller's task, when nothing is waiting and the
    connection can take it (direct writes, see :mod:`mensajero.schema.frames`);
    otherwise it waits here for the writer task (``run``), which drains the backlog as
    the transport allows. Fan-out frames are offered (refused when ``limit`` are
    already waiting); protocol messages (acks, pongs, completions, errors) are pushed
    and never refused.
    """

    def __init__(
        self, websocket: WebSocket, limit: int, direct: DirectFrameWriter | None = None
    ) -> None:
        self.websocket = websocket
        self.limit = limit
        self._direct = direct
        self._frames: deque[bytes] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def offer(self, frame: bytes) -> bool:
        if len(self._frames) >= self.limit:
            return False
        self.push(frame)
        return True

    def push(self, frame: bytes) -> None:
        if not self._frames:
            direct = self._direct
            if direct is not None and direct.can_write_now and direct.write([frame]):
                return
            self._idle.clear()
            self._wakeup.set()
        self._frames.append(frame)

    def clear(self) -> None:
        self._frames.clear()

    async def drained(self) -> None:
        await self._idle.wait()

    async def run(self) -> None:
        """Drain the backlog; returns once the connection is closed (direct writes)."""
        frames = self._frames
        direct = self._direct
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while frames:
                if direct is None:
                    await self.websocket.send_text(frames.popleft().decode())
                    continue
                if not await direct.wait_writable():
                    return
                chunk = [frames.popleft() for _ in range(min(len(frames), _DRAIN_CHUNK))]
                if not direct.write(chunk):
                    return
            self._idle.set()


@dataclass(eq=False)
class _Member:
    """One subscriber (a socket's operation) of a shared execution."""

    handler: SharedGraphQLTransportWSHandler
    operation_id: str
    prefix: bytes  # b'{"id":<id>,"type":"next","payload":'
    # Resolved with the operation's last word once the shared stream ends for it.
    outcome: asyncio.Future[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def deliver(self, payload_json: bytes) -> None:
        if self.outcome.done() or self.handler.is_slow:
            return  # a cut-off socket gets nothing after its error message
        if not self.handler.outbox.offer(self.prefix + payload_json + b"}"):
            self.handler.on_slow_consumer()

    def finish(self, message: dict[str, Any] | None) -> None:
        if not self.outcome.done():
            self.outcome.set_result(message)


class SharedSubscription:
    """One execution of a subscription operation, fanned out to every member."""

    def __init__(self, hub: SubscriptionBroadcaster, key: GroupKey) -> None:
        self.hub = hub
        self.key = key
        self.members: set[_Member] = set()
        self.task: asyncio.Task[None] | None = None
        self.executions = 0

    async def run(
        self,
        schema: BaseSchema,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Context,
    ) -> None:
        final: dict[str, Any] | None = {"type": "complete"}
        try:
            result_source = await schema.stream(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=operation_name,
            )
            async with aclosing(result_source):
                first = True
                async for result in result_source:
                    if first and isinstance(result, PreExecutionError):
                        final = {"type": "error", "errors": result.errors}
                        return
                    first = False
                    if not isinstance(result, ExecutionResult):
                        final = {
                            "type": "error",
                            "errors": [
                                GraphQLError(
                                    "Incremental delivery is not supported over "
                                    "graphql-transport-ws"
                                )
                            ],
                        }
                        return
                    self.executions += 1
                    self.hub.executions += 1
                    # Serialized once, whatever the number of members.
                    payload_json = _encode_payload(result)
                    for member in list(self.members):
                        member.deliver(payload_json)
        except asyncio.CancelledError:
            final = None  # every member left; nobody to tell
            raise
        except Exception as error:  # a resolver blew up mid-stream: end it for everyone
            logger.exception("shared subscription failed")
            final = {"type": "error", "errors": [GraphQLError(str(error), original_error=error)]}
        finally:
            self.hub._forget(self)
            await context.close()
            for member in list(self.members):
                member.finish(final)


class SubscriptionBroadcaster:
    """The process's registry of shared subscription executions."""

    def __init__(self) -> None:
        self._groups: dict[GroupKey, SharedSubscription] = {}
        self.executions = 0
        self.slow_consumers = 0
        # Sockets opened with frames written straight to the connection (see frames.py).
        self.direct_write_sockets = 0

    @property
    def group_count(self) -> int:
        return len(self._groups)

    @property
    def member_count(self) -> int:
        return sum(len(group.members) for group in self._groups.values())

    def join(
        self,
        key: GroupKey,
        member: _Member,
        *,
        schema: BaseSchema,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Context,
    ) -> SharedSubscription:
        group = self._groups.get(key)
        if group is None:
            group = SharedSubscription(self, key)
            self._groups[key] = group
            group.members.add(member)
            group.task = asyncio.create_task(
                group.run(schema, query, variables, operation_name, context),
                name="shared-subscription",
            )
        else:
            group.members.add(member)
        return group

    def leave(self, group: SharedSubscription, member: _Member) -> None:
        group.members.discard(member)
        if not group.members and group.task is not None and not group.task.done():
            # The last subscriber left: stop executing (closes the bus subscription).
            self._forget(group)
            group.task.cancel()

    def _forget(self, group: SharedSubscription) -> None:
        if self._groups.get(group.key) is group:
            del self._groups[group.key]


class SharedGraphQLTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with shared subscription execution and a bounded outbox."""

    outbox: SocketOutbox

    _shared = False
    is_slow = False

    async def handle(self) -> None:
        app_state = self.context.request.app.state
        if not app_state.settings.subscription_shared_execution:
            # The stock behaviour, one execution per subscriber (the benchmark's baseline).
            await super().handle()
            return
        self._shared = True
        websocket: WebSocket = self.context.request  # type: ignore[assignment]
        direct = (
            DirectFrameWriter.for_scope(websocket.scope)
            if app_state.settings.subscription_direct_writes
            else None
        )
        if direct is not None:
            app_state.subscription_broadcaster.direct_write_sockets += 1
        self.outbox = SocketOutbox(websocket, app_state.settings.subscription_outbox_limit, direct)
        self._cut = asyncio.Event()
        writer = asyncio.create_task(self.outbox.run(), name="ws-outbox")
        protocol = asyncio.create_task(super().handle(), name="ws-protocol")
        cut = asyncio.create_task(self._cut.wait())
        try:
            await asyncio.wait({protocol, writer, cut}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (protocol, cut, writer):
                task.cancel()
            for task in (protocol, cut, writer):
                with contextlib.suppress(BaseException):
                    await task

    async def send_message(self, message: Any) -> None:
        if not self._shared:
            await super().send_message(message)
            return
        # Every protocol message goes through the outbox so frames keep their order.
        self.outbox.push(orjson.dumps(message))

    def on_slow_consumer(self) -> None:
        """The outbox overflowed: tell every shared operation, then cut the socket."""
        if self.is_slow:
            return
        self.is_slow = True
        self.context.request.app.state.subscription_broadcaster.slow_consumers += 1
        self.outbox.clear()
        error = {
            "message": (
                f"The subscriber fell behind by more than {self.outbox.limit} messages "
                "and was disconnected; re-subscribe and re-read what you missed."
            ),
            "extensions": {"code": SLOW_CONSUMER_CODE},
        }
        for operation_id in list(self.operations):
            self.outbox.push(
                orjson.dumps({"id": operation_id, "type": "error", "payload": [error]})
            )
        asyncio.get_running_loop().create_task(self._disconnect_slow_consumer())

    async def _disconnect_slow_consumer(self) -> None:
        try:
            async with asyncio.timeout(SLOW_CONSUMER_GRACE_SECONDS):
                await self.outbox.drained()
                await self.websocket.close(SLOW_CONSUMER_CLOSE_CODE, "Subscriber too slow")
        except (TimeoutError, Exception):
            pass  # it did not even take the error: just cut the connection
        finally:
            self._cut.set()

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        normalized = _normalized_subscription(operation.query, operation.operation_name)
        principal = self.context.principal_or_none
        if normalized is None or principal is None or not self._shared:
            await super().run_operation(operation)
            return
        app_state = self.context.request.app.state
        broadcaster: SubscriptionBroadcaster = app_state.subscription_broadcaster
        variables = operation.variables or {}
        key: GroupKey = (
            principal.organization_id,
            principal.scopes,
            normalized,
            orjson.dumps(variables, option=orjson.OPT_SORT_KEYS),
            operation.operation_name,
        )
        member = _Member(
            handler=self,
            operation_id=operation.id,
            prefix=b'{"id":' + orjson.dumps(operation.id) + b',"type":"next","payload":',
        )
        # The group executes with a context of its own: results depend only on the
        # organization and scopes (both in the key), never on one socket.
        group_context = Context(
            request=self.context.request,
            sessionmaker=self.context.sessionmaker,
            principal_or_none=principal,
        )
        group = broadcaster.join(
            key,
            member,
            schema=self.schema,
            query=operation.query,
            variables=variables,
            operation_name=operation.operation_name,
            context=group_context,
        )
        try:
            final = await member.outcome
        finally:
            broadcaster.leave(group, member)
        if final is None or self.is_slow:
            return
        if final["type"] == "error":
            errors: list[GraphQLError] = final["errors"]
            if isinstance(errors[0], GraphQLSyntaxError):
                await self.websocket.close(code=4400, reason=errors[0].message)
                return
            await operation.send_initial_errors(errors)
            return
        await operation.send_operation_message({"id": operation.id, "type": "complete"})
