"""``python -m accelir.cli``: the command line without the console script (subprocesses, bare machines)."""

from accelir.cli import main

main()
