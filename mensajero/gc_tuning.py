"""Garbage-collector tuning for long-lived processes (``mensajero serve`` and ``worker``)."""

from __future__ import annotations

import gc

# Python's default (700, 10, 10) runs a young collection every 700 net allocations: a
# server holding thousands of websockets promotes whatever is in flight at each of
# them, and the promoted mass triggers full collections that walk every live object
# (hundreds of milliseconds with 2,000 sockets, a third of the CPU at 500 events/s).
# Young collections every 10,000 allocations let in-flight objects die of their
# reference count first (bench/subscriptions.py: 11.9k -> 15.2k deliveries per CPU s).
# A full collection waits for 100 middle ones instead of 10: each one paused the
# fan-out for tens of milliseconds, and four of them per 20 s run made the p99 of
# delivery latency (103 and 161 ms in two quiet runs; 42 and 71 ms with 100).
SERVER_GC_THRESHOLDS = (10_000, 10, 100)


def tune_garbage_collection() -> None:
    """For a long-lived server process, once its code and schema are loaded.

    Freezing moves every object alive now (modules, the GraphQL schema, mappers) out
    of the collector's reach: full collections no longer walk them. Objects created
    later are collected as usual.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVER_GC_THRESHOLDS)
