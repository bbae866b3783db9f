"""The `edgeres` command: typer parsing over the library; only this package prints and exits."""
