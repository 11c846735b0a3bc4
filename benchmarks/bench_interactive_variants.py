"""The design choices of the interactive 3D segmentation, measured with the real LiteMedSAM
weights on the objects of ``examples/datasets/interactive_3d.json``:

1. clicks given to the model as SAM point prompts, against clicks that only move the box
   and edit the mask (the default), over the challenge's protocol (box + 5 clicks);
2. clicks that correct in their own direction only (``monotone_clicks``, the default since
   issue 34), against clicks whose carried change may replace other slices' masks;
3. SAM's dense prompt (the previous slice's low-res logits) in the box step's walk.

    python benchmarks/bench_interactive_variants.py [--description D.json] [--clicks-only]

Prints the median DSC over objects at each step per variant (n objects), the worst final
DSC, and how many objects lost DSC to some click.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _dense_walk(seg, image, box, key, z_range, dense: bool) -> np.ndarray:
    """The box step's walk (as medsam.segmentation.engine.walk) with or without the
    previous slice's logits as the dense prompt."""
    from medsam.prompt_geometry import mask_to_box
    from medsam.segmentation.engine import DEFAULT_WALK, object_present, touching
    from medsam.segmentation.segmenter import content_key

    out = np.zeros(image.shape, bool)
    seg.set_slice(image[key], key=content_key(image[key]))
    first, _, logits = seg.segment_scored(np.asarray(box, float))
    out[key] = first
    for step, end in ((1, z_range[1]), (-1, z_range[0])):
        prev, prev_logits = first, logits
        for z in range(key + step, end + step, step):
            b = mask_to_box(prev, DEFAULT_WALK.margin)
            if b is None:
                break
            seg.set_slice(image[z], key=content_key(image[z]))
            mask, _, lg = seg.segment_scored(b, mask_input=prev_logits if dense else None)
            mask = touching(mask, prev)
            if not object_present(mask, prev, DEFAULT_WALK):
                break
            out[z], prev, prev_logits = mask, mask, lg
    return out


def main(argv: list[str] | None = None) -> int:
    from medsam import load_model
    from medsam.datasets.cases import find_dataset_cases, normalise, read_case, select_labels
    from medsam.datasets.description import load_description
    from medsam.evaluation import interactive as ia
    from medsam.evaluation.interactive_drivers import SessionDriver
    from medsam.evaluation.interactive_results import step_medians
    from medsam.metrics import dice
    from medsam.segmentation import MedSAMSegmenter
    from medsam.segmentation.engine import DEFAULT_WALK

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--description", default=str(ROOT / "examples/datasets/interactive_3d.json"))
    parser.add_argument("--clicks-only", action="store_true", help="skip the dense-prompt comparison")
    args = parser.parse_args(argv)
    description = load_description(args.description)
    seg = MedSAMSegmenter(load_model(), cache_slices=4096)
    for name, config in (("clicks move the box and edit the mask (default)", DEFAULT_WALK),
                         ("clicks as SAM point prompts", replace(DEFAULT_WALK, model_clicks=True)),
                         ("a carried click may replace other slices' masks (before issue 34)",
                          replace(DEFAULT_WALK, monotone_clicks=False))):
        objects = ia.object_summary(ia.run_description(description, SessionDriver(seg, config)))
        medians = step_medians(objects)
        steps = [o["dsc"] for o in objects]
        lowered = sum(any(b < a - 1e-9 for a, b in zip(d, d[1:])) for d in steps)
        print(f"{name}: median DSC by step {', '.join(f'{100 * v:.1f}' for v in medians)}; worst final "
              f"{100 * min(d[-1] for d in steps):.1f}; {lowered} objects lost DSC to a click (n = {len(objects)} "
              f"objects)", flush=True)
    if args.clicks_only:
        return 0
    scores: dict[bool, list[float]] = {False: [], True: []}
    for spec in description.datasets:
        for files in find_dataset_cases(spec):
            image, labels, geometry = read_case(spec, files)
            labels, image = select_labels(spec, labels), normalise(spec, image, geometry)
            rng = np.random.RandomState(ia.BOX_SEED)
            for c, _ in spec.classes or ():
                if not (labels == c).any():
                    continue
                b = ia.challenge_box(labels == c, rng)
                for dense in (False, True):
                    mask = _dense_walk(seg, image, (b.x_min, b.y_min, b.x_max, b.y_max), b.z_mid,
                                       (b.z_min, b.z_max), dense)
                    scores[dense].append(dice(mask, labels == c))
    print(f"box step, previous slice's mask as SAM's dense prompt: median DSC {100 * np.median(scores[True]):.1f} "
          f"against {100 * np.median(scores[False]):.1f} without (n = {len(scores[True])} objects)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
