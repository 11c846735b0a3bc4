"""Progress of long work (cases, slices, objects, steps), on stderr.

:func:`progress_bar` is tqdm where stderr is a terminal. Where it is not (a log file, a
pipe, a batch job), it is the same counter written as whole lines every
:data:`LOG_INTERVAL_S` seconds and at the end, so a job's log shows that it is moving
("cases: 40%|... 4/10 [01:12<01:48, 18.0s/case]") instead of nothing for minutes; work
shorter than that interval prints nothing.
"""

from __future__ import annotations

import sys
from typing import Any, Iterable, TextIO

#: seconds between two progress lines when stderr is not a terminal
LOG_INTERVAL_S = 10.0


class _Lines:
    """A file for tqdm that turns its carriage-return updates into lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last = ""

    def write(self, text: str) -> None:
        text = text.replace("\r", "").rstrip()
        head = text.split(" [")[0].split()
        count = f"{text.split(':')[0]} {head[-1] if head else ''}"   # the name and its count "4/10"
        if text and count != self.last:   # tqdm draws its final state again on closing
            self.stream.write(text + "\n")
            self.last = count

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", enabled: bool = True, leave: bool = True, initial: int = 0) -> Any:
    """A tqdm bar (an iterable wrapper, or ``update()`` by hand with ``total``); disabled
    when ``enabled`` is false; lines every :data:`LOG_INTERVAL_S` s and a last one when
    stderr is not a terminal (``leave`` applies to terminals only)."""
    from tqdm.auto import tqdm

    tty = sys.stderr.isatty()
    if not enabled:
        return tqdm(iterable, total=total, disable=True)
    if tty:
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, initial=initial)
    return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, file=_Lines(sys.stderr),
                mininterval=LOG_INTERVAL_S, maxinterval=LOG_INTERVAL_S, delay=LOG_INTERVAL_S, ncols=100,
                ascii=True)
