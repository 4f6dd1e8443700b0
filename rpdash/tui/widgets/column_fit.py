"""Which columns a table shows at a given width, and how wide each is (DESIGN.md 2: no pane
ever scrolls sideways; columns drop by priority, names truncate last).

Each column has a priority (0 first), a least width, a wanted width and a most width. The
columns are taken in priority order while their least widths fit; the room left grows them,
in priority order, first to their wanted width, then to their most. Shown in their own
order, not by priority."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    key: str
    label: str
    least: int
    priority: int
    want: int = 0  # 0: the least width
    most: int = 0  # 0: the wanted width

    def bounds(self, most: int | None = None) -> tuple[int, int, int]:
        top = most if most is not None else (self.most or max(self.least, self.want))
        top = max(self.least, top)
        want = min(max(self.least, self.want), top)
        return self.least, want, top


def fit_columns(specs: Sequence[ColumnSpec], width: int, *, pad: int = 1,
                most: dict[str, int] | None = None,
                skip: Iterable[str] = ()) -> tuple[tuple[str, str, int], ...]:
    """``(key, label, width)`` of the columns that fit in ``width`` cells (each column
    also takes ``2 * pad``). ``most`` overrides a column's most width (the longest name,
    the longest id); ``skip`` leaves columns out (the endpoint column of one endpoint's
    jobs)."""
    most = most or {}
    skipped = set(skip)
    order = sorted((s for s in specs if s.key not in skipped), key=lambda s: s.priority)
    widths: dict[str, int] = {}
    used = 0
    for s in order:
        need = s.least + 2 * pad
        if used + need <= width:
            widths[s.key] = s.least
            used += need
    left = width - used
    for stage in (1, 2):
        for s in order:
            if s.key not in widths or left <= 0:
                continue
            target = s.bounds(most.get(s.key))[stage]
            grow = min(left, max(0, target - widths[s.key]))
            widths[s.key] += grow
            left -= grow
    return tuple((s.key, s.label, widths[s.key]) for s in specs if s.key in widths)
