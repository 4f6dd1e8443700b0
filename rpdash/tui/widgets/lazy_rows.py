"""Rows that are data until they are on screen: a DataTable mixin for the job list.

With 10,000 jobs listed and ~45 rows on screen, formatting every row's cells on each
change (9 values, compared, ``Text`` built for the changed ones) was 60-100 ms per burst of
10,000 status changes, and adding 10,000 formatted rows through ``add_row`` was most of
the first paint. Here a row is added with placeholder cells and put in :attr:`_stale`; a
change to a row off screen only puts it there again. A stale row gets its real cells
(:meth:`_fill_rows`, the table's own formatting) when it is about to be rendered
(``render_lines``: scrolling, cursor moves, a re-sort) or read (``get_row``/``get_cell``),
so the cell accessors never return placeholders.

Rows are added in bulk (:meth:`add_lazy_rows`: no per-row reactive updates) and re-ordered
by a key on the row key (:meth:`order_rows`), not on the cells, which may be placeholders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import DuplicateKey, Row, RowKey

#: what an unfilled cell holds (never rendered: a row is filled before it is drawn)
PLACEHOLDER = Text("", end="")


class LazyRows(DataTable[Any]):
    """Mix in before ``DataTable`` (after ``InPlaceCells``/``OneLineRows``); one-line rows."""

    #: keys of the rows whose cells are not (or no longer) what their record says; the
    #: class using this mixin sets it before ``DataTable.__init__``
    _stale: set[str]

    def _fill_rows(self, row_keys: list[str]) -> None:
        """Write the real cells of these stale rows (with ``write_cell``)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ adding, ordering
    def add_lazy_rows(self, keys: Iterable[str]) -> None:
        """Append rows with placeholder cells, to be filled when first drawn or read."""
        cols = [c.key for c in self.ordered_columns]
        locations, data, rows = self._row_locations, self._data, self.rows
        index = before = self.row_count
        new: list[RowKey] = []
        for key in keys:
            row_key = RowKey(key)
            if row_key in locations:
                raise DuplicateKey(f"The row key {row_key!r} already exists.")
            locations[row_key] = index
            data[row_key] = dict.fromkeys(cols, PLACEHOLDER)
            rows[row_key] = Row(row_key, 1, None, False)
            new.append(row_key)
            index += 1
        if not new:
            return
        self._stale.update(k.value for k in new if k.value is not None)
        self._new_rows.update(new)
        self._order_version += 1  # type: ignore[attr-defined]  # OneLineRows
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        if before == 0 and self.columns and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()  # the first row: the cursor now rests on a job
        self._update_count += 1
        self.check_idle()

    def order_rows(self, key: Callable[[str], Any]) -> None:
        """Re-order the rows by ``key(row key)`` (DataTable's ``sort`` reads the cells)."""
        ordered = sorted(self._data, key=lambda rk: key(rk.value))
        self._row_locations = TwoWayDict({rk: i for i, rk in enumerate(ordered)})
        self._order_version += 1  # type: ignore[attr-defined]
        self._update_count += 1
        self.refresh()

    def mark_stale(self, key: str) -> None:
        self._stale.add(key)

    def remove_row(self, row_key: RowKey | str) -> None:
        self._stale.discard(row_key.value if isinstance(row_key, RowKey) else row_key)  # type: ignore[arg-type]
        super().remove_row(row_key)

    def clear(self, columns: bool = False) -> Any:
        self._stale.clear()
        return super().clear(columns)

    # ------------------------------------------------------------------ filling
    def fill_now(self, keys: Iterable[str]) -> None:
        """Fill these rows if stale and drop the renders of what changed, without a
        repaint (for a render about to happen, or a read)."""
        stale = self._stale
        todo = [k for k in keys if k in stale]
        if not todo:
            return
        written, count = self._written, self._written_n  # type: ignore[attr-defined]
        self._written, self._written_n = {}, 0  # type: ignore[attr-defined]
        try:
            self._fill_rows(todo)
            mine = self._written  # type: ignore[attr-defined]
        finally:
            self._written, self._written_n = written, count  # type: ignore[attr-defined]
        stale.difference_update(todo)
        if mine:
            self._drop_renders(mine)

    def _drop_renders(self, keys: Any) -> None:
        for cache in (self._cell_render_cache, self._row_render_cache):
            for k in [k for k in cache.keys() if k[0] in keys]:
                cache.discard(k)
        self._line_cache.clear()
        for key in keys:
            index = self._row_locations.get(RowKey(key))
            if index is not None:
                self._row_renderable_cache.discard((self._update_count, index))

    def render_lines(self, crop: Region) -> list[Strip]:
        if self._stale and self.row_count:
            header = self.header_height if self.show_header else 0
            top = int(self.scroll_y) + crop.y - header
            get_key = self._row_locations.get_key
            keys = []
            for index in range(max(0, top), min(self.row_count, top + crop.height)):
                row_key = get_key(index)
                if row_key is not None and row_key.value is not None:
                    keys.append(row_key.value)
            self.fill_now(keys)
        return super().render_lines(crop)

    def get_row(self, row_key: RowKey | str) -> list[Any]:
        self.fill_now([row_key.value if isinstance(row_key, RowKey) else row_key])  # type: ignore[list-item]
        return super().get_row(row_key)

    def get_cell(self, row_key: RowKey | str, column_key: Any) -> Any:
        self.fill_now([row_key.value if isinstance(row_key, RowKey) else row_key])  # type: ignore[list-item]
        return super().get_cell(row_key, column_key)
