"""The one base class of the errors a user can cause (bad files, configs, checkpoints).

Entry points catch `MMERError` and print its message as one line, never a traceback.
"""


class MMERError(Exception):
    """A problem with the user's input, described by the message (file and expectation)."""


class DataError(MMERError, ValueError):
    """A user-fixable problem with input data; the message names the file/row and what was expected."""


class TrainingError(MMERError, RuntimeError):
    """Training cannot go on (e.g. too many non-finite losses, a state file of another run)."""
