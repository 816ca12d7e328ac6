"""Expected failures: bad input, a missing tool, an unavailable backend.

The CLI prints these as one line and exits 2; anything else is a bug and keeps its traceback.
"""


class UsageError(Exception):
    """The user asked for something that cannot be done as asked."""
