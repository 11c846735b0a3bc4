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


def test_a_disabled_bar_prints_nothing(capsys, monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0)
    bar = progress.progress_bar(total=2, desc="x", enabled=False)
    bar.update(2)
    bar.close()
    assert capsys.readouterr().err == ""
