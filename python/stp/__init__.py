"""STP: self-play theorem proving for Lean 4."""

__version__ = "0.1.0"
