"""Drivers of the interactive protocol (:class:`~.interactive.Driver`): each step's label map
from the boxes and clicks so far, in this process (:class:`SessionDriver`) or as one
``medsam segment`` process per step on challenge npz files (:class:`ProcessDriver`), as the
challenge runs a container."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..io.npz import ChallengeBox

__all__ = ["ordered_clicks", "SessionDriver", "ProcessDriver"]


def ordered_clicks(clicks: dict[str, list[list[int]]], order: Sequence[str]) -> list[tuple[tuple[int, int, int], bool]]:
    """One class's clicks in the order given: ``[((z, y, x), foreground), ...]`` from the
    challenge's ``{"fg": [...], "bg": [...]}`` and its ``clicks_order``."""
    taken = {"fg": 0, "bg": 0}
    out = []
    for kind in order:
        points = clicks.get(kind, [])
        if taken[kind] >= len(points):
            raise ValueError(f"clicks_order names {taken[kind] + 1} {kind} click(s) but there are {len(points)}")
        z, y, x = (int(v) for v in points[taken[kind]])
        taken[kind] += 1
        out.append(((z, y, x), kind == "fg"))
    return out


class SessionDriver:
    """Drives an :class:`~medsam.segmentation.session.InteractiveSession` in this process:
    the boxes once, then each new click (the embeddings stay in the segmenter's cache)."""

    def __init__(self, segmenter: Any, config: Any = None):
        from ..segmentation.engine import DEFAULT_WALK

        self.segmenter = segmenter
        self.config = config or DEFAULT_WALK
        self.session: Any = None
        self._applied: list[int] = []

    def start(self, image: np.ndarray, spacing_xyz: Sequence[float], name: str) -> None:
        from ..io.geometry import Geometry
        from ..segmentation.session import InteractiveSession

        self.session = InteractiveSession(self.segmenter, self.config)
        self.session.load(image, Geometry(spacing=tuple(float(v) for v in spacing_xyz[::-1])))
        self._applied = []

    def step(self, boxes: list[ChallengeBox], clicks: list[dict[str, list[list[int]]]],
             order: list[list[str]], prev_pred: np.ndarray | None) -> np.ndarray:
        if not self._applied:
            from ..segmentation.prompt_files import challenge_prompt

            for i, b in enumerate(boxes):
                self.session.set_prompt(challenge_prompt(b, i + 1))
            self._applied = [0] * len(boxes)
        for i in range(len(boxes)):
            for (z, y, x), fg in ordered_clicks(clicks[i], order[i])[self._applied[i]:]:
                self.session.add_click(i + 1, x, y, z, foreground=fg)
                self._applied[i] += 1
        return np.asarray(self.session.label_map())


class ProcessDriver:
    """One ``medsam segment CASE.npz -o OUT.npz`` process per step, on files laid out as the
    challenge's evaluation writes them (``imgs``, ``spacing``, ``boxes``, ``clicks``,
    ``clicks_order``, ``prev_pred``); the slice embeddings stay in the on-disk store between
    processes. ``options`` are extra ``medsam segment`` arguments (the model)."""

    def __init__(self, folder: Any, options: Sequence[str] = ()):
        from pathlib import Path

        self.folder = Path(folder)
        self.options = list(options)
        self._image: np.ndarray | None = None
        self._spacing: tuple[float, ...] = ()
        self._name = "case"

    def start(self, image: np.ndarray, spacing_xyz: Sequence[float], name: str) -> None:
        self._image, self._spacing, self._name = image, tuple(float(v) for v in spacing_xyz), name or "case"

    def step(self, boxes: list[ChallengeBox], clicks: list[dict[str, list[list[int]]]],
             order: list[list[str]], prev_pred: np.ndarray | None) -> np.ndarray:
        import subprocess
        import sys

        assert self._image is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        case = self.folder / f"{self._name}.npz"
        out = self.folder / f"{self._name}_segs.npz"
        arrays: dict[str, Any] = {"imgs": self._image, "spacing": np.asarray(self._spacing),
                                  "boxes": [b.to_dict() for b in boxes]}
        if prev_pred is not None:
            arrays.update(clicks=clicks, clicks_order=order, prev_pred=prev_pred)
        from ..fileutil import atomic_path

        with atomic_path(case) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        done = subprocess.run([sys.executable, "-m", "medsam", "segment", str(case), "-o", str(out),
                               "--overwrite", *self.options], capture_output=True, text=True)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise RuntimeError(f"medsam segment failed on {case}: {lines[-1] if lines else done.returncode}")
        with np.load(out, allow_pickle=False) as result:
            return np.asarray(result["segs"])
