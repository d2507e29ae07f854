"""The `actlab` command line: `commands` parses arguments and calls the library; `printing` prints what it returned.
The console entry point is `actlab.cli:main`."""

from actlab.cli.commands import app, main

__all__ = ["app", "main"]
