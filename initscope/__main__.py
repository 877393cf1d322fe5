"""`python -m initscope` runs the same entry point as the console script."""

from initscope.cli import main

main()
