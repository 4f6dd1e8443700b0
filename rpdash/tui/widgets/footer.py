"""The dashboard's footer, fitted to the width: Textual's footer cuts its last keys off at
the edge of a small terminal (80 columns). Here keys that do not fit are left out, the
app-wide ones first (pause, new, quit: ``?`` lists every key), then from the right; ``?``
and the palette key always stay."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: left out first when the keys do not fit (``?`` lists them all)
DROP_FIRST = ("toggle_pause", "new_job", "quit")
KEEP = ("help",)


def _width(item: object) -> int:
    if isinstance(item, FooterKey):
        return len(item.key_display) + (1 + len(item.description) if item.description else 0)
    return len(str(getattr(item, "renderable", ""))) or 4


class FitFooter(Footer):
    def compose(self) -> ComposeResult:
        items = list(super().compose())
        palette = [i for i in items if i.has_class("-command-palette")]
        keys = [i for i in items if not i.has_class("-command-palette")]
        room = self.app.size.width - sum(_width(i) + 2 for i in palette)

        def total() -> int:
            return sum(_width(i) + 1 for i in keys)

        def action(item: object) -> str:
            return str(getattr(item, "action", "")).rsplit(".", 1)[-1]

        for name in DROP_FIRST:
            if total() <= room:
                break
            keys = [i for i in keys if action(i) != name]
        while total() > room and len(keys) > 1:
            drop = next((i for i in reversed(keys) if action(i) not in KEEP), None)
            if drop is None:
                break
            keys.remove(drop)
        if keys:
            self.styles.grid_size_columns = len(keys)
        yield from keys
        yield from palette

    def on_resize(self) -> None:
        self.refresh(recompose=True)
