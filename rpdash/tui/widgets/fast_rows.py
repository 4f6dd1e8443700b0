"""Row-order caches for a DataTable whose rows are all one line high (the job list).

DataTable keys its row-order and row-offset caches on a counter that every cell write
bumps, so with 10,000 rows each repaint after an update re-walked every row (~90 ms).
Here the order only changes on add, remove, sort and clear, so the caches are keyed on
that instead; and as every column has a fixed width, new rows are not measured.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from textual.geometry import Size
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey


class OneLineRows(DataTable[Any]):
    """Mix in before ``DataTable``: one-line rows, order cached per structural change."""

    # set before DataTable.__init__ runs (its watchers already read ordered_rows)
    _order_version: int = 0
    _ordered: tuple[tuple[int, int], list[Any]] | None = None
    _offsets: tuple[tuple[int, int], list[tuple[RowKey, int]]] | None = None

    # DataTable keys its row-order and row-offset caches on a counter that every cell
    # write bumps, so with 10,000 rows each repaint after an update re-walked every row
    # (~90 ms). Rows here are all one line high and their order only changes on add,
    # remove, sort and clear, so these caches are keyed on that instead.
    def add_row(self, *cells: Any, height: int | None = 1, key: str | None = None,
                label: Any = None) -> RowKey:
        self._order_version += 1
        return super().add_row(*cells, height=1, key=key, label=label)

    def remove_row(self, row_key: RowKey | str) -> None:
        self._order_version += 1
        super().remove_row(row_key)

    def sort(self, *columns: Any, key: Callable[[Any], Any] | None = None,
             reverse: bool = False) -> Any:
        self._order_version += 1
        super().sort(*columns, key=key, reverse=reverse)
        return self

    def clear(self, columns: bool = False) -> Any:
        self._order_version += 1
        self._ordered = None
        self._offsets = None
        super().clear(columns)
        return self

    @property
    def ordered_rows(self) -> list[Any]:
        key = (self.row_count, self._order_version)
        if self._ordered is None or self._ordered[0] != key:
            get_key = self._row_locations.get_key
            rows = self.rows
            self._ordered = (key, [rows[get_key(i)] for i in range(self.row_count)])
        return self._ordered[1]

    @property
    def _y_offsets(self) -> list[tuple[RowKey, int]]:
        key = (self.row_count, self._order_version)
        if self._offsets is None or self._offsets[0] != key:
            self._offsets = (key, [(row.key, 0) for row in self.ordered_rows])
        return self._offsets[1]

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """DataTable measures every cell of every new row to size auto-width columns;
        all of this table's columns have a fixed width, so only the virtual size needs
        computing. (10,000 rows: about 1 s of measuring saved on first paint.)"""
        if any(c.auto_width for c in self.columns.values()):
            super()._update_dimensions(new_rows)
            return
        width = sum(c.get_render_width(self) for c in self.columns.values())
        header = self.header_height if self.show_header else 0
        self.virtual_size = Size(width + self._row_label_column_width,
                                 self._total_row_height + header)
