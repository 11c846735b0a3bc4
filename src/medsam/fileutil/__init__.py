"""The one write path: outputs appear complete or not at all, never clobber by accident.

Every output of the package is written through :func:`atomic_path` (a file) or
:func:`atomic_folder` (a folder): the writer writes a temporary file beside the final
one, which is flushed to the disk (``fsync``) and then renamed into place. Any
``OSError`` on the way (a full disk, a file system that refuses the file) becomes one
:class:`~medsam.errors.OutputError` naming the final path and the reason, and leaves
nothing behind. Writers whose library does not report short writes (ITK) check what
they wrote before the rename (:func:`medsam.io.volume.write_volume`).

``overwrite`` is checked when the file is renamed into place, not only before the work:
without it the rename refuses a file that another run created in the meantime.

:func:`committed_together` makes the outputs written inside it one commit: a case's
label map and its overlay are renamed into place together, or, if any of them fails,
none is and every file that was there before is kept.

:func:`output_lock` holds an output folder for one run; a second run into the same
folder is refused with the first run's process id and command.

The jobs live in :mod:`.checks` (outputs and folders checked before the work),
:mod:`.commit` (the atomic writes), :mod:`.locks` (one run per output folder) and
:mod:`.tables` (CSV files).
"""

from .checks import check_output_folder, check_writable_output, disk_full, existing_folder, write_failure
from .commit import atomic_folder, atomic_path, committed_together
from .locks import LOCK_NAME, output_lock
from .tables import write_csv

__all__ = ["LOCK_NAME", "atomic_folder", "atomic_path", "check_output_folder", "check_writable_output",
           "committed_together", "disk_full", "existing_folder", "output_lock", "write_csv", "write_failure"]
