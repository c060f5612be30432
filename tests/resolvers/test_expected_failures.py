"""``write``: the failures a mutation lists come back as data, others propagate."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from mensajero.schema.common import ConflictError, InvalidInputError, NotFoundError, write
from mensajero.schema.messaging import InsufficientCreditsError
from mensajero.services.errors import Conflict, InsufficientCredits, InvalidInput, NotFound


def _info(log: list[str]) -> Any:
    @contextlib.asynccontextmanager
    async def unit_of_work() -> AsyncIterator[str]:
        log.append("begin")
        try:
            yield "session"
        except BaseException:
            log.append("rollback")
            raise
        log.append("commit")

    return SimpleNamespace(context=SimpleNamespace(unit_of_work=unit_of_work))


async def test_answer_of_the_work_is_returned_after_commit() -> None:
    log: list[str] = []

    async def work(session: Any) -> str:
        log.append(f"work in {session}")
        return "done"

    assert await write(_info(log), work, InvalidInputError) == "done"
    assert log == ["begin", "work in session", "commit"]


@pytest.mark.parametrize(
    ("error", "failure", "fields"),
    [
        (InvalidInput("bad phone", field="phone"), InvalidInputError, {"field": "phone"}),
        (NotFound("tag not found", ids=["t1"]), NotFoundError, {"ids": ["t1"]}),
        (Conflict("tag name taken", field="name"), ConflictError, {"field": "name"}),
        (
            InsufficientCredits(required=10, available=3),
            InsufficientCreditsError,
            {"required": 10, "available": 3},
        ),
    ],
)
async def test_listed_failure_rolls_back_and_comes_back_as_data(
    error: Exception, failure: type, fields: dict[str, Any]
) -> None:
    log: list[str] = []

    async def work(session: Any) -> str:
        raise error

    outcome = await write(_info(log), work, failure)
    assert type(outcome) is failure
    assert outcome.code == error.code  # type: ignore[attr-defined]
    assert outcome.message == error.message  # type: ignore[attr-defined]
    for name, value in fields.items():
        assert getattr(outcome, name) == value
    assert log == ["begin", "rollback"]


async def test_unlisted_failure_propagates() -> None:
    async def work(session: Any) -> str:
        raise NotFound("client not found")

    with pytest.raises(NotFound):
        await write(_info([]), work, InvalidInputError, ConflictError)
