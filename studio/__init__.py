"""Cantor Studio: a composition workstation with a piano roll, a score view and trained models."""

__version__ = "0.1.0"
