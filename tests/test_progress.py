"""Progress where stderr is not a terminal: whole lines every interval, nothing for short work."""

import time

from medsam import progress


def test_long_work_logs_lines_and_short_work_prints_nothing(capsys, monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.3)
    for _ in progress.progress_bar(range(3), desc="short", unit="case"):
        pass
    assert capsys.readouterr().err == ""
    bar = progress.progress_bar(total=4, desc="slices", unit="slice")
    for _ in range(4):
        time.sleep(0.25)
        bar.update()
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 2 and "\r" not in "".join(lines)
    assert all(line.startswith("slices: ") for line in lines) and "4/4" in lines[-1]
    assert sum("4/4" in line for line in lines) == 1          # the final state once, not twice


def test_a_volume_shows_its_slices_not_its_objects(capsys, monkeypatch):
    """One object on a 40-slice volume: the bar counts slices (40, its whole range), moves
    while the walk goes, and ends at 40/40 although the object stops earlier."""
    import numpy as np

    from medsam.io import Geometry
    from medsam.segmentation import BoxPrompt, segment

    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.05)
    volume = np.zeros((40, 32, 32), np.uint8)
    volume[5:25, 8:24, 8:24] = 200

    def threshold(image, box):   # a real segmenter: the bright pixels inside the box
        time.sleep(0.02)
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        out = np.zeros(image.shape[:2], bool)
        out[y0:y1, x0:x1] = image[y0:y1, x0:x1] > 100
        return out

    labels = segment(volume, Geometry.default(3), [BoxPrompt((6, 6, 26, 26), label=1, slice=15)], threshold,
                     progress=True)
    assert labels[5:25].all(axis=(1, 2)).sum() == 0 and labels[5:25].any(axis=(1, 2)).all()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 2 and all(line.startswith("slices: ") for line in lines)
    assert "40/40" in lines[-1] and sum("40/40" in line for line in lines) == 1
    assert any("/40" in line and "40/40" not in line for line in lines)   # it moved on the way


def test_a_disabled_bar_prints_nothing(capsys, monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0)
    bar = progress.progress_bar(total=2, desc="x", enabled=False)
    bar.update(2)
    bar.close()
    assert capsys.readouterr().err == ""
