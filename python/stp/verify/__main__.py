"""`python -m stp.verify`: see stp.verify.cli."""

from stp.verify.cli import entry_point

if __name__ == "__main__":
    entry_point()
