"""`python -m factflow ...` runs the CLI."""

from factflow.cli import main

main()
