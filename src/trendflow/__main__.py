"""`python -m trendflow ...` runs the TrendFlow CLI."""

from trendflow.cli import main

if __name__ == "__main__":
    main()
