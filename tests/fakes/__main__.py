"""Run one fake provider as a server in its own process.

    python -m tests.fakes twilio --port 0 --latency-ms 20 [--honour-idempotency-token]
    python -m tests.fakes resend --port 0 --api-key re_test
    python -m tests.fakes evolution --port 0 --api-key key --instance mensajero

Prints ``LISTENING <base_url>`` on its first line of stdout once it accepts
connections, then serves until killed. Knobs: ``POST <base_url>/_fake/fail``,
``/_fake/latency``, ``/_fake/reset``; received messages: ``GET /_fake/messages``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from tests.fakes.base import FakeProviderServer, ThreadedServer
from tests.fakes.evolution import FakeEvolution
from tests.fakes.resend import FakeResend
from tests.fakes.twilio import FakeTwilio


def build(args: argparse.Namespace) -> FakeProviderServer:
    latency = args.latency_ms / 1000
    if args.provider == "twilio":
        kwargs = {}
        if args.account_sid:
            kwargs["account_sid"] = args.account_sid
        if args.auth_token:
            kwargs["auth_token"] = args.auth_token
        return FakeTwilio(
            latency=latency, honour_idempotency_token=args.honour_idempotency_token, **kwargs
        )
    if args.provider == "resend":
        return FakeResend(latency=latency, **({"api_key": args.api_key} if args.api_key else {}))
    return FakeEvolution(
        latency=latency,
        instances=tuple(args.instance or ["mensajero"]),
        **({"api_key": args.api_key} if args.api_key else {}),
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes")
    parser.add_argument("provider", choices=["twilio", "resend", "evolution"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--api-key")
    parser.add_argument("--account-sid")
    parser.add_argument("--auth-token")
    parser.add_argument("--instance", action="append")
    parser.add_argument("--honour-idempotency-token", action="store_true")
    args = parser.parse_args()
    server = ThreadedServer(build(args).app, host=args.host, port=args.port)
    server.start()
    print(f"LISTENING {server.base_url}", flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
