"""`python cli.py ...` from a checkout: the same application as the `edgeres` command."""

from edgeres.cli.app import main

if __name__ == "__main__":
    main()
