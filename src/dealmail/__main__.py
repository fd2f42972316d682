"""`python -m dealmail`: the same as the `dealmail` command."""

from dealmail.cli import main

main()
