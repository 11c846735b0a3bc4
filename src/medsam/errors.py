"""Exceptions shared across the package.

Every error a user can cause (a bad file, a bad box, a bad option) is raised as a
:class:`MedSAMError` subclass whose message names the file or value and the problem.
The command line prints that message on one line and exits with status 2.
"""

from __future__ import annotations


class MedSAMError(Exception):
    """Base class of the errors the command line reports as ``medsam: error: ...``."""


class InputError(MedSAMError, ValueError):
    """A file, folder, option or value given by the user cannot be used."""


class CheckpointError(InputError):
    """A checkpoint file is missing, unreadable, or does not match the model."""


class WeightsDownloadError(MedSAMError):
    """Named weights could not be downloaded or verified."""
