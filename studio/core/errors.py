"""Errors that reach the user as one clear line (exit code 2 on the command line, a dialog in the GUI)."""


class StudioError(Exception):
    """A problem with the user's input: a bad file, a bad argument. Never an internal bug."""


class FileFormatError(StudioError):
    """A file that cannot be read: corrupt, truncated, empty, too large, or of an unknown kind."""


class Cancelled(Exception):
    """A long job (a model sampling, an export) was cancelled by the user."""


class StudioWarning(UserWarning):
    """Something the user should know, in their words (a model kept a melody at its pitch as the
    tenor, a file was repaired): the command line prints it as ``studio: warning: ...`` and
    still exits 0."""


class FileWarning(StudioWarning):
    """A file was read, but something in it was repaired or skipped: one line naming the file
    (the command line prints it as ``studio: warning: ...`` and still exits 0)."""
