"""The one error type a user sees: a single line naming the file and the problem."""


class CaloforgeError(Exception):
    """A problem with the user's input or setup, reported as one line (no traceback) by the CLI."""
