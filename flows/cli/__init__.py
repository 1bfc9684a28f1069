"""Every `firelane` subcommand. `main` is the console script; the commands import Prefect only
when they run something, so the authoring commands and `run --plan` stay offline."""

from flows.cli.main import _parser, main

__all__ = ["_parser", "main"]
