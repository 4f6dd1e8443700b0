"""Formatted cells kept per job, so a filter, scope or sort change that re-lists thousands
of rows does not re-format the cells of rows whose values did not change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class CellCache:
    def __init__(self) -> None:
        self._cells: dict[str, tuple[tuple[Any, ...], Any, list[Any]]] = {}

    def cells(self, job_id: str, row: tuple[Any, ...], cols: Any,
              make: Callable[[], list[Any]]) -> list[Any]:
        """The cells of ``row`` (the plain values that decide them) in columns ``cols``."""
        hit = self._cells.get(job_id)
        if hit is not None and hit[0] == row and hit[1] == cols:
            return hit[2]
        cells = make()
        self._cells[job_id] = (row, cols, cells)
        return cells

    def trim(self, jobs: int) -> None:
        """Forget everything once it holds far more than the list (jobs dropped from it)."""
        if len(self._cells) > 2 * jobs + 1000:
            self._cells.clear()

    def clear(self) -> None:
        self._cells.clear()
