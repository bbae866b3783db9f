"""`python -m edgeres`: the same application as the `edgeres` command."""

from edgeres.cli.app import main

main()
