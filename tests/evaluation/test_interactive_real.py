"""The interactive protocol with the real LiteMedSAM weights on a real CT lesion: one
process per step (``medsam segment CASE.npz``, embeddings kept on disk) gives exactly
what the in-process session gives, and bad challenge input is one line and exit 2."""

import os
import subprocess
import sys

import numpy as np
import pytest

from medsam.evaluation import interactive as ia
from medsam.evaluation.interactive_drivers import ProcessDriver, SessionDriver
from medsam.segmentation import MedSAMSegmenter

pytestmark = pytest.mark.slow


def _case(shared_data):
    with np.load(shared_data / "medsam2_recist" / "CT_Lesion_000002_03_01_035-047.npz") as d:
        return d["imgs"], d["gts"].astype(np.uint8), np.asarray(d["spacing"], float)


class _Watched:
    """A driver that lists the store's files (name -> inode) after each step."""

    def __init__(self, driver, folder):
        self.driver, self.folder, self.after = driver, folder, []

    def start(self, *args):
        self.driver.start(*args)

    def step(self, *args):
        out = self.driver.step(*args)
        self.after.append({p.name: p.stat().st_ino for p in self.folder.glob("*.npz")})
        return out


def test_one_process_per_step_equals_the_session_and_reuses_embeddings(shared_data, lite_medsam_model,
                                                                         lite_medsam_checkpoint, tmp_path,
                                                                         monkeypatch):
    """A cold store in the default folder ($MEDSAM_HOME/embeddings; the session's store is
    switched off here): the box step fills it, and the click steps, each a new process,
    read the box step's files and write none again (a file computed again would be a new
    file in its place: the store writes atomically)."""
    from medsam.segmentation.embedding_store import STORE_ENV

    imgs, gts, spacing = _case(shared_data)
    spacing_zyx = tuple(spacing[::-1])
    in_process = ia.run_case(SessionDriver(MedSAMSegmenter(lite_medsam_model)), imgs, gts, spacing_zyx,
                             [(1, "lesion")], "recist", "c2", n_clicks=2)
    monkeypatch.setenv("MEDSAM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(STORE_ENV, raising=False)
    store = tmp_path / "home" / "embeddings"
    driver = _Watched(ProcessDriver(tmp_path / "work", ["--checkpoint", str(lite_medsam_checkpoint)]), store)
    by_process = ia.run_case(driver, imgs, gts, spacing_zyx, [(1, "lesion")], "recist", "c2", n_clicks=2)
    assert [(r.step, r.click, round(r.dsc, 6)) for r in by_process] == \
        [(r.step, r.click, round(r.dsc, 6)) for r in in_process]
    assert in_process[0].dsc > 0.7
    assert len(driver.after) == 3 and 0 < len(driver.after[0]) <= imgs.shape[0]
    for later in driver.after[1:]:   # the box step's files, untouched by the click steps
        assert {k: later.get(k) for k in driver.after[0]} == driver.after[0]
    assert sum(len(later) - len(driver.after[0]) for later in driver.after[1:]) <= 2   # clicks off the box's slices


def test_bad_challenge_input_is_one_line_exit_2_and_nothing_written(tmp_path, lite_medsam_checkpoint):
    imgs = np.zeros((6, 32, 32), np.uint8)
    box = {"z_min": 1, "z_max": 4, "z_mid": 2, "z_mid_x_min": 4, "z_mid_y_min": 4, "z_mid_x_max": 20,
           "z_mid_y_max": 20}
    case = tmp_path / "case.npz"
    np.savez_compressed(case, imgs=imgs, spacing=np.ones(3), boxes=[box],
                        clicks=[{"fg": [[7, 1, 1]], "bg": []}], clicks_order=[["fg"]],
                        prev_pred=np.zeros((6, 32, 32), np.uint8))
    out = tmp_path / "out.npz"
    done = subprocess.run([sys.executable, "-m", "medsam", "segment", str(case), "-o", str(out),
                           "--checkpoint", str(lite_medsam_checkpoint)],
                          capture_output=True, text=True, env={**os.environ, "MEDSAM_HOME": str(tmp_path)})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [f"medsam: error: {case}: class 1: fg click [z, y, x] = [7, 1, 1] lies outside the volume "
                     f"(6, 32, 32)"]
    assert not out.exists()


def test_a_foreground_click_does_not_shrink_the_lesions_other_slices(shared_data, lite_medsam_model):
    """Issue 34: on RECIST lesion 000009 the challenge's first click is a foreground click on
    the lesion's last slice; carried towards the key slice it used to shrink slices 8 and 7
    (DSC 93.3 -> 83.7). A click now corrects in its own direction only: no slice loses a
    pixel to a foreground click, and the DSC does not fall."""
    from medsam.segmentation.embedding_store import configured_store

    with np.load(shared_data / "medsam2_recist" / "CT_Lesion_000009_03_01_036-048.npz") as d:
        image, gt, spacing = d["imgs"], (d["gts"] > 0).astype(np.uint8), np.asarray(d["spacing"], float)
    driver = SessionDriver(MedSAMSegmenter(lite_medsam_model, store=configured_store()))
    masks = []

    class Keep:
        def start(self, *args):
            driver.start(*args)

        def step(self, *args):
            out = driver.step(*args)
            masks.append(out.copy())
            return out

    rows = ia.run_case(Keep(), image, gt, spacing[::-1], [(1, "lesion")], "recist", "000009", n_clicks=1)
    (box, click) = rows
    assert click.click.startswith("fg ") and click.click.endswith(",9")
    assert click.dsc >= box.dsc and round(box.dsc, 3) == 0.933
    assert not (masks[0].astype(bool) & ~masks[1].astype(bool)).any()   # nothing taken away
