"""`python -m ephemera_cli` is the same as `kubectl-ephemera`."""

from ephemera_cli.main import main

main()
