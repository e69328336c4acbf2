"""`python -m nlptransfer.assets fetch|verify|list`."""

from nlptransfer.assets.cli import main

main()
