"""Exceptions shared across the package.

Every error a user can cause (a bad file, a bad box, a bad option) is raised as a
:class:`MedSAMError` subclass whose message names the file or value and the problem.
The command line prints that message on one line and exits with status 2.
"""

from __future__ import annotations

#: option -> how a Python caller fixes the problem; the command line names its own flag
#: instead (``medsam.cli.OPTION_HINTS``)
OPTION_HINTS: dict[str, str] = {
    "overwrite": "pass overwrite=True to replace it",
    "threshold": "set a threshold to binarise it",
    "binary": "score the masks as binary (binary=True)",
    "names": "give each table a method name",
    "allow_missing": "allow missing cases to compare the common cases only",
    "modality": "give the modality (ct, mr, xray, us, ...) to normalise them",
    "resume": "resume=True continues it, overwrite=True starts again",
    "case_pattern": "give a case pattern that finds the case name in every file name",
}


class MedSAMError(Exception):
    """Base class of the errors the command line reports as ``medsam: error: ...``.

    ``option`` names the setting that fixes the problem (a key of
    :data:`OPTION_HINTS`): ``str(error)`` ends with the Python way to set it, and the
    command line replaces that with its own flag. Messages never name a flag.
    """

    def __init__(self, message: str = "", option: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.option = option

    def __str__(self) -> str:
        if self.option is None:
            return self.message
        return f"{self.message}; {OPTION_HINTS[self.option]}"

    def __reduce__(self) -> tuple:  # picklable across worker processes, option included
        return (type(self), (self.message, self.option))


class InputError(MedSAMError, ValueError):
    """A file, folder, option or value given by the user cannot be used."""


class OutputError(MedSAMError):
    """An output could not be written: a full disk, no permission, a file system that
    refuses it. The message names the output as the caller named it and the reason."""


class CheckpointError(InputError):
    """A checkpoint file is missing, unreadable, or does not match the model."""


class WeightsDownloadError(MedSAMError):
    """Named weights could not be downloaded or verified."""
