"""``python -m pglab`` is the ``pglab`` command."""

from pglab.cli import main

main()
