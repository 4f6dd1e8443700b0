"""Cells written in place and repainted alone: a DataTable mixin shared by the job list and
the endpoints pane.

``DataTable.update_cell`` bumps a table-wide counter (``_update_count``) that every render
cache is keyed on, so each call re-renders every cell on screen and leaves a stale
generation in the caches. With a 1 Hz age tick that was 2-5 % of a core and a growing RSS at
idle (bench/idle_bench.py); after a burst of 10,000 status changes it re-rendered all ~400
visible cells where 2-3 columns had changed (bench/joblist_bench.py). Here a write only
changes the row's data; :meth:`InPlaceCells.flush_cells` then drops the renders of exactly
the written cells and repaints their rows (or, for a burst, the table once). Every column of
these tables has a fixed width, so nothing needs re-measuring.
"""

from __future__ import annotations

from typing import Any

from textual.widgets.data_table import CellDoesNotExist, ColumnKey, RowDoesNotExist


class InPlaceCells:
    """Mixin for a ``DataTable`` (put it before ``DataTable`` in the bases)."""

    #: up to this many cells written between flushes are repainted row by row; more is a
    #: burst: one repaint of what is on screen
    FEW_CELLS = 64

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: row key -> bit mask of the column positions written since the last flush (ints,
        #: not tuples: a burst of 10,000 writes allocates next to nothing for it)
        self._written: dict[str, int] = {}
        self._written_n = 0

    def cursor_row_key(self) -> str | None:
        """The key of the row under the cursor (None: no rows)."""
        table: Any = self
        if table.row_count == 0:
            return None
        try:
            row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        except CellDoesNotExist:
            return None
        return row_key.value

    def write_cell(self, row_key: str, column: ColumnKey, position: int, value: Any) -> bool:
        """Put ``value`` in the cell of ``column`` (at index ``position``) without a repaint;
        False when there is no such cell (the caller falls back to ``update_cell``)."""
        row = self._data.get(row_key)  # type: ignore[attr-defined]  # RowKey == its str
        if row is None or column not in row:
            return False
        row[column] = value
        self._written[row_key] = self._written.get(row_key, 0) | (1 << position)
        self._written_n += 1
        return True

    def flush_cells(self) -> None:
        """Repaint what :meth:`write_cell` changed since the last flush."""
        written, self._written = self._written, {}
        if not written:
            return
        count, self._written_n = self._written_n, 0
        table: Any = self
        position = {key: i for i, key in enumerate(table.columns)}
        cell_cache = table._cell_render_cache
        stale = []
        for k in cell_cache.keys():  # (row key, column key, ...)
            mask = written.get(k[0])
            if mask and (mask >> position.get(k[1], 63)) & 1:
                stale.append(k)
        for k in stale:
            cell_cache.discard(k)
        row_cache = table._row_render_cache
        for k in [k for k in row_cache.keys() if k[0] in written]:
            row_cache.discard(k)
        table._line_cache.clear()  # assembled from the row cache: cheap to rebuild
        if count > self.FEW_CELLS:
            table._row_renderable_cache.clear()
            table.refresh()
            return
        for row_key in written:
            try:
                index = table.get_row_index(row_key)
            except RowDoesNotExist:
                continue
            table._row_renderable_cache.discard((table._update_count, index))
            table.refresh_row(index)
