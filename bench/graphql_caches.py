"""What the parse and validation caches save per GraphQL request.

Runs the real schema on a realistic client document (GraphiQL's introspection
query, the largest document any client sends, and a typical dashboard
query) twice: with the caches emptied before every request (the baseline:
what every request cost without them) and with warm caches. Execution is
the same in both (no database: the resolvers stop at authentication), so the
difference is parsing plus validation.

    uv run python bench/graphql_caches.py [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time

from graphql import get_introspection_query
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache
from strawberry.relay import to_base64

from mensajero.schema.limits import DOCUMENT_CACHE_SIZE
from mensajero.schema.schema import schema

DASHBOARD = """
query Dashboard($client: ID!) {
  viewer {
    organization { id uuid name timezone creditBalance termsVersion createdAt }
    member { id uuid email name role termsAcceptedVersion hasAcceptedCurrentTerms }
    scopes
  }
  client: node(id: $client) {
    id
    ... on Client {
      uuid name email phone phoneE164 country metadata createdAt updatedAt deletedAt
    }
  }
  tags: nodes(ids: [$client]) { id ... on Tag { uuid name color } }
}
"""

DOCUMENTS = {
    "introspection (GraphiQL)": get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    ),
    "dashboard query": DASHBOARD,
}


def clear_caches() -> None:
    _get_parse_cache(DOCUMENT_CACHE_SIZE).cache_clear()
    _get_validate_cache(DOCUMENT_CACHE_SIZE).cache_clear()


async def measure(document: str, requests: int, *, cold: bool) -> list[float]:
    timings: list[float] = []
    variables = {"client": to_base64("Client", "01a20378-4c8e-7879-8570-42e6717d7960")}
    for _ in range(requests):
        if cold:
            clear_caches()
        started = time.perf_counter()
        await schema.execute(document, variable_values=variables)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


async def main(requests: int) -> None:
    print(f"{requests} requests per case; milliseconds per request (median, p95)")
    for name, document in DOCUMENTS.items():
        await measure(document, 20, cold=False)  # warm up imports and the JIT-less paths
        cold = await measure(document, requests, cold=True)
        warm = await measure(document, requests, cold=False)
        cold_median, warm_median = statistics.median(cold), statistics.median(warm)
        print(
            f"{name:28} no cache {cold_median:7.3f} ms (p95 {quantile(cold):7.3f})"
            f" | cached {warm_median:7.3f} ms (p95 {quantile(warm):7.3f})"
            f" | {cold_median / warm_median:5.1f}x"
        )


def quantile(values: list[float], q: float = 0.95) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    # The resolvers fail at authentication on purpose; don't time the logging of it.
    logging.getLogger("strawberry.execution").setLevel(logging.CRITICAL)
    asyncio.run(main(parser.parse_args().requests))
