"""Exceptions shared across the package.

Every error a user can cause (a bad file, a bad box, a bad option) is raised as a
:class:`MedSAMError` subclass whose message names the file or value and the problem.
The command line prints that message on one line and exits with status 2.
"""

from __future__ import annotations

from typing import Mapping

#: option -> how a Python caller fixes the problem; the command line and the web app
#: pass their own hints to :meth:`MedSAMError.render` (``medsam.cli.CLI_HINTS``,
#: ``medsam.web.app.WEB_HINTS``)
OPTION_HINTS: dict[str, str] = {
    "overwrite": "pass overwrite=True to replace it",
    "threshold": "set a threshold to binarise it",
    "binary": "score the masks as binary (binary=True)",
    "names": "give each table a method name",
    "allow_missing": "allow missing cases to compare the common cases only",
    "modality": "give the modality (ct, mr, xray, us, ...) to normalise them",
    "resume": "resume=True continues it, overwrite=True starts again",
    "case_pattern": "give a case pattern that finds the case name in every file name",
    "margin": "give a margin of 0 or more",
    "allow_incomplete": "set allow_incomplete=True to use it anyway",
    "subset": "set subset=True to score only the cases that have predictions",
}


class MedSAMError(Exception):
    """Base class of the errors the command line reports as ``medsam: error: ...``.

    ``option`` names the setting that fixes the problem (a key of
    :data:`OPTION_HINTS`): ``str(error)`` ends with the Python way to set it;
    :meth:`render` ends it with a front end's own way. Messages never name a flag.
    """

    def __init__(self, message: str = "", option: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.option = option

    def render(self, hints: Mapping[str, str] = OPTION_HINTS) -> str:
        """The message, then ``hints[option]`` (how the reader sets that option: the
        command line's flag, the web page's control); no hint where ``hints`` has none
        for it (a browser user is never told to pass a Python argument)."""
        hint = hints.get(self.option) if self.option is not None else None
        return f"{self.message}; {hint}" if hint else self.message

    def __str__(self) -> str:
        return self.render()

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


def install_hint(extra: str) -> str:
    """How to install an optional extra: ``pip install 'medsam-toolkit[web]'``."""
    from ._version import DISTRIBUTION

    return f"pip install '{DISTRIBUTION}[{extra}]'"


def first_line(error: BaseException) -> str:
    """The first non-blank line of an exception's text, else its type's name: the one
    line a report shows of an exception that is not ours (a library's, the machine's)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def as_failure(error: BaseException, where: str) -> MedSAMError:
    """One item of a batch that failed, as a :class:`MedSAMError` that names ``where``
    (a case, a file): a ``MedSAMError`` keeps its message and option (``where`` put in
    front unless the message names it); a ``ValueError`` is the input's fault; anything
    else is reported with its type (a bug, or a library's failure), never dropped."""
    if isinstance(error, MedSAMError):
        if where in error.message:
            return error
        return MedSAMError(f"{where}: {error.message}", error.option)
    if isinstance(error, ValueError):
        return InputError(f"{where}: {first_line(error)}")
    return MedSAMError(f"{where}: {type(error).__name__}: {first_line(error)}")
