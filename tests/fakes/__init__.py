"""Fake provider servers speaking Twilio's, Resend's and Evolution's protocols.

Importable by any test or benchmark::

    from tests.fakes import FakeTwilio, FakeResend, FakeEvolution

    fake = FakeResend(api_key="re_test")
    async with fake.client() as http:            # in-process (ASGI transport)
        ...
    with fake.run_in_thread() as base_url:       # a real TCP server
        ...

or in another process: ``with fake_process("twilio", "--latency-ms", "20") as base_url:``
(``tests.fakes.process``; it runs ``python -m tests.fakes twilio --port 0``).

Each fake also builds the callbacks its provider would send about a message it
accepted, signed as the provider signs them: ``FakeTwilio.status_callback``,
``FakeResend.webhook_event``, ``FakeEvolution.status_webhook``.
"""

from tests.fakes.base import FailureRule, FakeProviderServer, ThreadedServer
from tests.fakes.evolution import FakeEvolution
from tests.fakes.resend import FakeResend
from tests.fakes.twilio import FakeTwilio

__all__ = [
    "FailureRule",
    "FakeEvolution",
    "FakeProviderServer",
    "FakeResend",
    "FakeTwilio",
    "ThreadedServer",
]
