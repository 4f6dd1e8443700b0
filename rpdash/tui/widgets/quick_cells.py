"""A cheaper render of one-line ``Text`` cells: a DataTable mixin for the job list.

Every full repaint of the job table (focus in or out: ``DataTable:focus`` tints every cell,
so each cell's render cache key changes; a burst of changes; a re-listing) renders ~360
cells. DataTable renders each through ``Styled(Padding(cell))`` and Rich's generic line
splitting; here a one-line ``Text`` cell is rendered by Rich alone at the inner width and
the padding and styles are added directly: the same segments (same text, same styles:
``pre_style + segment style + post_style``, as ``Styled`` applies them), roughly half the
cost. Anything else (headers, labels, fixed rows or columns, taller rows, other
renderables) goes through DataTable's own ``_render_cell``.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable


class QuickCells(DataTable[Any]):
    """Mix in before ``DataTable``; rows must be one line high."""

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> Any:
        if row_index < 0 or column_index < 0 or self.fixed_rows or self.fixed_columns:
            return super()._render_cell(row_index, column_index, base_style, width,
                                        cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        key = (row_key, self._column_locations.get_key(column_index), base_style, cursor,
               hover, self._show_hover_cursor, self._update_count, self._pseudo_class_state)
        cache = self._cell_render_cache
        lines = cache.get(key)
        if lines is not None:
            return lines
        cell = self._get_row_renderables(row_index)[1][column_index]
        pad = self.cell_padding
        row = self.rows.get(row_key)  # type: ignore[arg-type]
        if (not isinstance(cell, Text) or row is None or row.height != 1
                or width - 2 * pad <= 0 or "\n" in cell.plain or "\t" in cell.plain):
            return super()._render_cell(row_index, column_index, base_style, width,
                                        cursor, hover)
        component, post = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css")
        pre = base_style + Style.from_meta({"row": row_index, "column": column_index})
        pre = pre + component
        app = self.app
        options = (app.console_options.update_dimensions(width, 1).update(no_wrap=True)
                   .update_width(width - 2 * pad).update_height(1))  # as Padding does
        inner = app.console.render_lines(cell, options, pad=True)[0]
        outer = pre + post if post else pre
        side = Segment(" " * pad, outer) if pad else None
        line = [side] if side else []
        if post:
            line.extend(Segment(text, pre + style + post if style else pre + post)
                        for text, style, _ in inner)
        else:
            line.extend(Segment(text, pre + style if style else pre) for text, style, _ in inner)
        if side:
            line.append(side)
        lines = [line]
        cache[key] = lines
        return lines
