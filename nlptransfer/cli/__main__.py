"""`python -m nlptransfer.cli` = the `nlptransfer` command."""

from nlptransfer.cli import main

main()
