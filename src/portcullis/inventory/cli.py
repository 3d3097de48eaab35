import typer


def register(app: typer.Typer) -> None:
    """Adds the inventory command groups to the root command."""
