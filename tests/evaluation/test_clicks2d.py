"""The 2D click protocol (medsam.evaluation.clicks2d) with real weights on a held-out
chest X-ray: the box, then clicks by the challenge's rule, through the library's click path."""

from medsam import io
from medsam.evaluation.clicks2d import dataset_medians, run_image
from medsam.segmentation import MedSAMSegmenter


def test_a_click_raises_the_heart_of_a_held_out_radiograph(shared_data, lite_interactive_model, embedding_store):
    """JPCLN004 is in the validation split of the training recipe (never trained on): the
    interactive model's first click on its heart (object 3) raises the DSC by more than 2 points."""
    image = io.read(shared_data / "jsrt_scr_cxr" / "images" / "JPCLN004.png")[0]
    labels = io.read(shared_data / "jsrt_scr_cxr" / "masks_labels" / "JPCLN004.png")[0]
    rows = run_image(MedSAMSegmenter(lite_interactive_model, store=embedding_store), image, labels,
                     n_clicks=1, dataset="jsrt", case="JPCLN004")
    assert [(r.object, r.step) for r in rows] == [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)]
    heart = {r.step: r.dsc for r in rows if r.object == 3}
    assert heart[0] > 0.8 and heart[1] > heart[0] + 0.02, heart
    n, medians = dataset_medians(rows)["jsrt"]
    assert n == 1 and len(medians) == 2      # one image: its objects are not separate cases
