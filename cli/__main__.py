"""``python -m cli`` is the ``tokentally`` command."""

from cli import main

main()
