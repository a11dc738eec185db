"""Command-line interface (Typer + rich): the composition root that wires runs from configs."""
