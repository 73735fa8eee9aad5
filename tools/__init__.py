"""Operators' commands, run as `python -m tools.<name>` from the project folder."""
