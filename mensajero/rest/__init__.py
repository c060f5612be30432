"""The REST shim: the legacy APIs' routes over the same services as GraphQL.

One module per source API (:mod:`.coordinalo`, :mod:`.sendme123`, :mod:`.mosend`); each
exports ``OPERATIONS``, from which both the routes and the OpenAPI document
(:mod:`.openapi`) are built.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from mensajero.rest import coordinalo, mosend, sendme123
from mensajero.rest.common import Operation, build_routes

OPERATIONS: list[Operation] = [
    *sendme123.OPERATIONS,
    *coordinalo.OPERATIONS,
    *mosend.OPERATIONS,
]


def shim_routes() -> list[BaseRoute]:
    """Every shim route, plus ``/openapi.json`` and the ``/docs`` page."""
    from mensajero.rest.openapi import docs_page, openapi_json

    return [
        *build_routes(OPERATIONS),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs_page, methods=["GET"]),
    ]
