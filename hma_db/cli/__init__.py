"""The ``hma-db`` command: takes the command line, calls one public API function per subcommand,
prints a summary and exits with 0 (done), 1 (the work failed) or 2 (bad input)."""

from hma_db.cli.main import main

__all__ = ["main"]
