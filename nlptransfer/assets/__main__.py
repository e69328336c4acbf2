"""`python -m nlptransfer.assets fetch|verify|list`."""

from nlptransfer.assets import main

main()
