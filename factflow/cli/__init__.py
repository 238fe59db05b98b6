"""The `factflow` command line: one module per command group, mounted in `app`."""

from factflow.cli.app import app, main

__all__ = ["app", "main"]
