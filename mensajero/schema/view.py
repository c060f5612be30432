"""The GraphQL endpoint: authentication, context, and the request's session lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from mensajero.db import transaction
from mensajero.schema.broadcast import SharedGraphQLTransportWSHandler
from mensajero.schema.compiled import CompiledListsExtension
from mensajero.schema.context import Context
from mensajero.schema.graphiql import GRAPHIQL_CONTENT_SECURITY_POLICY, render_graphiql_page
from mensajero.services.auth import (
    authenticate,
    authenticate_request_key,
    extract_api_key,
    extract_api_key_from_payload,
)
from mensajero.services.errors import Unauthenticated

logger = logging.getLogger(__name__)


class MensajeroGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = SharedGraphQLTransportWSHandler

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:  # type: ignore[override]
        """Our GraphiQL page, every asset served by this app (no CDN): it works offline."""
        return HTMLResponse(
            render_graphiql_page(request.scope.get("root_path", "")),
            headers={"Content-Security-Policy": GRAPHIQL_CONTENT_SECURITY_POLICY},
        )

    def create_response(  # type: ignore[override]
        self, response_data: Any, sub_response: Response
    ) -> Response:
        """Strawberry's HTTP answer, its body encoded by orjson (a 50-node page: 0.3 ms less).

        Only HTTP bodies: websocket frames keep strawberry's text encoding.
        """
        response = Response(_encode(response_data), status_code=200, media_type="application/json")
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        state = request.scope.setdefault("state", {})
        context = Context(
            request=request,
            sessionmaker=request.app.state.sessionmaker,
            principal_or_none=state.get("principal"),
        )
        if isinstance(request, WebSocket):
            # Strawberry stores the connection_init payload here before on_ws_connect.
            context.connection_params = None  # type: ignore[attr-defined]
        state["graphql_context"] = context
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticate a websocket in ``connection_init``, with the HTTP API's keys.

        The payload may carry the key under any of the three header names (or in a
        ``headers`` object). A missing or bad key rejects the connection: the socket is
        closed with 4403 Forbidden (graphql-transport-ws; the legacy graphql-ws
        protocol answers ``connection_error``).
        """
        params = getattr(context, "connection_params", None)
        raw_key = extract_api_key_from_payload(params if isinstance(params, dict) else None)
        try:
            async with transaction(context.sessionmaker) as session:
                context.principal_or_none = await authenticate(session, raw_key)
        except Unauthenticated as error:
            raise ConnectionRejectionError(
                {"message": error.message, "extensions": {"code": error.code}}
            ) from error
        assert raw_key is not None and isinstance(context.request, WebSocket)
        settings = context.request.app.state.settings
        context.key_watch = asyncio.create_task(
            _close_when_key_stops_working(
                context.request,
                context.sessionmaker,
                raw_key,
                interval=settings.websocket_key_recheck_seconds,
                cache_seconds=settings.auth_cache_seconds,
            ),
            name="websocket-key-watch",
        )
        return UNSET


async def _close_when_key_stops_working(
    websocket: WebSocket,
    sessionmaker: async_sessionmaker[AsyncSession],
    raw_key: str,
    *,
    interval: float,
    cache_seconds: float,
) -> None:
    """A subscription lives for hours; its key may be revoked or expire meanwhile.

    Checked like any request's key (through the per-process cache); once it fails
    the socket is closed with 4403, the code a bad key gets at ``connection_init``.
    A database that cannot answer does not close anybody's socket.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            await authenticate_request_key(sessionmaker, raw_key, ttl_seconds=cache_seconds)
        except Unauthenticated as error:
            with contextlib.suppress(Exception):  # already closing: nothing to tell
                await websocket.close(code=4403, reason=error.message)
            return
        except Exception:
            logger.warning("could not re-check a websocket's API key", exc_info=True)


def _encode(data: Any) -> bytes:
    try:
        return orjson.dumps(data)
    except (TypeError, orjson.JSONEncodeError):
        # What orjson refuses (integers beyond 64 bits in a JSON value): the json module's
        # compact form, strawberry's own encoding.
        return json.dumps(data, separators=(",", ":")).encode()


def _wants_graphql_ide(scope: Scope) -> bool:
    if scope["method"] != "GET":
        return False
    headers = dict(scope["headers"])
    accept = headers.get(b"accept", b"").decode("latin-1")
    query_string = scope.get("query_string", b"")
    return "text/html" in accept and b"query=" not in query_string


def _unauthenticated(message: str) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]}
    return Response(
        orjson.dumps(body),
        status_code=401,
        media_type="application/json",
        headers={"WWW-Authenticate": 'Bearer realm="mensajero"'},
    )


class GraphQLEndpoint:
    """Authenticates HTTP operations before Strawberry sees them.

    A request without a valid key gets 401 and never reaches the executor; the
    GraphiQL page itself is served without a key (the key is typed into its
    headers pane). Websockets authenticate in ``connection_init``.
    """

    def __init__(self, graphql: MensajeroGraphQL) -> None:
        self.graphql = graphql

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.setdefault("state", {})
        if scope["type"] == "http" and not _wants_graphql_ide(scope):
            request = Request(scope, receive)
            try:
                state["principal"] = await authenticate_request_key(
                    request.app.state.sessionmaker,
                    extract_api_key(request.headers),
                    ttl_seconds=request.app.state.settings.auth_cache_seconds,
                )
            except Unauthenticated as error:
                await _unauthenticated(error.message)(scope, receive, send)
                return
        try:
            if scope["type"] == "http" and scope["method"] == "POST":
                receive = await self._compiled_or_replay(scope, receive, send)
                if receive is None:
                    return
            await self.graphql(scope, receive, send)
        finally:
            context: Context | None = state.get("graphql_context")
            if context is not None:
                if context.key_watch is not None:
                    context.key_watch.cancel()
                await context.close()

    async def _compiled_or_replay(
        self, scope: Scope, receive: Receive, send: Send
    ) -> Receive | None:
        """Answer a POSTed operation on the compiled list path when strawberry has already
        parsed, limited and validated its text and found it compilable (see
        ``CompiledLists.answer``); then None. Otherwise the ``receive`` that hands
        strawberry the body read here."""
        compiled = CompiledListsExtension.compiled
        request = Request(scope, receive)
        headers = request.headers
        if (
            compiled is None
            or not request.app.state.settings.graphql_compiled_lists
            or not headers.get("content-type", "").startswith("application/json")
            or "multipart" in headers.get("accept", "")
        ):
            return receive
        body = await request.body()
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = None
        if (
            isinstance(payload, dict)
            and isinstance(payload.get("query"), str)
            and set(payload) <= {"query", "variables", "operationName"}
        ):
            context = await self.graphql.get_context(request, None)
            data = await compiled.answer(
                payload["query"], payload.get("operationName"), payload.get("variables"), context
            )
            if data is not None:
                await Response(_encode({"data": data}), media_type="application/json")(
                    scope, receive, send
                )
                return None
            await context.close()  # strawberry makes its own
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


def create_graphql_endpoint() -> GraphQLEndpoint:
    from mensajero.schema.schema import schema

    return GraphQLEndpoint(
        MensajeroGraphQL(
            schema,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
        )
    )
