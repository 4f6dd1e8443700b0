"""The dashboard's result keeper never calls a job expired when it is the endpoint that is gone."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rpdash.core.errors import NotFound
from rpdash.tui.results import ResultKeeper


class Book:
    def __init__(self) -> None:
        self.changes: list[tuple[str, dict]] = []

    def change(self, job_id: str, **kw) -> None:
        self.changes.append((job_id, kw))


def keeper_for(which: str, *, ambiguous: bool = True):
    err = NotFound("not found")
    err.ambiguous = ambiguous

    class Client:
        async def status(self, endpoint_id, job_id):
            raise err

    class Check:
        asked = 0

        async def which(self, endpoint_id):
            Check.asked += 1
            return which

    book = Book()
    session = SimpleNamespace(client=Client(), book=book, tracker=SimpleNamespace(not_found=Check()))
    return ResultKeeper(lambda: session, lambda: 0.0, lambda *a, **k: None), book, Check


@pytest.mark.parametrize(("which", "expired", "says"), [
    ("job", True, "expired"),
    ("endpoint", False, "endpoint ep-1 is unknown"),
    ("unknown", False, "try again"),
])
async def test_an_ambiguous_404_asks_which_before_marking_expired(which, expired, says):
    keeper, book, check = keeper_for(which)
    said = await keeper.fetch_result("ep-1", "job-1")
    assert says in said
    assert (book.changes == [("job-1", {"expired": True})]) is expired
    assert check.asked == 1


async def test_a_404_that_names_the_job_needs_no_check():
    keeper, book, check = keeper_for("endpoint", ambiguous=False)
    assert await keeper.fetch_result("ep-1", "job-1") == "expired"
    assert check.asked == 0
