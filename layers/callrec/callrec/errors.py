"""The root of callrec's exception vocabulary.

Each module defines the few errors it raises (`MkvError` in mkv.py, `LeaseLost` in
recordings.py, ...) as subclasses of `CallrecError`, so a boundary can catch everything
the library means to raise in one clause. Messages say what was expected, what was found
and where (byte offset, fragment number, contact id).
"""


class CallrecError(Exception):
    """Base class of every error callrec raises on purpose."""
