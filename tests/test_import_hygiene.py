"""Only rpdash.tui imports Textual: the headless layers (CLI, simulator, client, store,
services, config) must start without it, so they stay fast and usable without a terminal."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_headless_modules_do_not_import_textual():
    code = textwrap.dedent(
        """
        import sys
        import rpdash.api, rpdash.api.client
        import rpdash.sim, rpdash.sim.server
        import rpdash.store, rpdash.store.history
        import rpdash.services, rpdash.services.session
        import rpdash.config, rpdash.cli
        bad = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
        print(",".join(bad))
        sys.exit(1 if bad else 0)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"textual imported by a headless module: {proc.stdout}{proc.stderr}"


def test_tui_imports_textual_lazily_from_the_cli():
    """The dashboard module itself loads fine (and does need Textual)."""
    code = "import rpdash.tui.app, sys; print('textual' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"


def test_rpdash_help_imports_no_textual_and_nothing_heavy():
    """``rpdash --help`` and ``rpdash run --help`` answer at once: the command line's package
    loads only light standard modules (not even asyncio) until a command needs more."""
    code = textwrap.dedent(
        """
        import sys
        from rpdash.cli import main
        for argv in (["--help"], ["run", "--help"], ["logs", "--help"]):
            assert main(argv) == 0
        heavy = sorted(m for m, mod in sys.modules.items() if mod is not None and (
                       m == "rpdash.config"
                       or m.split(".")[0] in {"textual", "rich", "httpx", "pydantic", "asyncio"}))
        print("HEAVY=" + ",".join(heavy), file=sys.stderr)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY=\n" in proc.stderr, proc.stderr
