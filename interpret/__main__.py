"""`python -m interpret` runs the command-line interface."""
from interpret.cli.main import main

main()
