"""bench: performance figures, printed (never asserted in tests)."""

from __future__ import annotations

import typer

from . import app

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print figures.")
app.add_typer(bench_app, name="bench")
