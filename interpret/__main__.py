"""`python -m interpret` runs the command-line interface."""
from interpret.cli import main

main()
