"""``python -m worker.cli`` is the ``tokentally`` command."""

from worker.cli import main

main()
