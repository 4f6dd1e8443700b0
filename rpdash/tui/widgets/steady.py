"""Updating a ``Static`` without a layout of the screen when its size stays the same.

``Static.update`` asks for a layout by default: the whole screen is laid out again on the
next frame (tens of ms with a 10,000-row job list). A status change of the shown job only
rewrites a line or two of text, which almost never changes the widget's height.
:func:`update_in_place` repaints the widget and asks for a layout only when the new
content needs another number of lines at the widget's width (or the widget has no size
yet). The width of an ``auto``-width widget could change with its content: these
widgets fill their container's width, so only the height is checked.
"""

from __future__ import annotations

from typing import Any

from textual.geometry import Size
from textual.widgets import Static

_NO_SIZE = Size(0, 0)


def update_in_place(static: Static, content: Any) -> bool:
    """Show ``content`` in ``static``. Returns True if a layout was asked for."""
    width = static.content_size.width
    if not width or not static.is_mounted:
        static.update(content)
        return True
    # the height laid out last time, for this width (kept here: Textual's own cache of
    # it is dropped on every repaint)
    seen: tuple[int, int] | None = getattr(static, "_steady_height", None)
    if seen is not None and seen[0] == width:
        before = seen[1]
    else:
        before = static.get_content_height(_NO_SIZE, _NO_SIZE, width)
    static.update(content, layout=False)
    after = static.get_content_height(_NO_SIZE, _NO_SIZE, width)
    static._steady_height = (width, after)  # type: ignore[attr-defined]
    if after != before:
        static.refresh(layout=True)
        return True
    return False
