"""The job list's formatted-cell cache: reused only while a row's values are unchanged."""

from rpdash.tui.widgets.cell_cache import CellCache


def test_cells_are_reused_only_for_the_same_row_and_columns():
    cache = CellCache()
    made = []

    def make(tag):
        def f():
            made.append(tag)
            return [tag]
        return f

    a = cache.cells("j", ("x", 1), (0, 1), make("a"))
    assert cache.cells("j", ("x", 1), (0, 1), make("b")) is a and made == ["a"]
    assert cache.cells("j", ("x", 2), (0, 1), make("c")) == ["c"]  # a value changed
    assert cache.cells("j", ("x", 2), (0,), make("d")) == ["d"]  # the columns changed
    cache.clear()
    assert cache.cells("j", ("x", 2), (0,), make("e")) == ["e"]
    for i in range(1100):
        cache.cells(str(i), (), (), list)
    cache.trim(10)  # far more than the list holds: forgotten
    assert cache.cells("j", ("x", 2), (0,), make("f")) == ["f"]
