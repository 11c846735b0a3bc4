"""Settings of the interactive model's inference, chosen on patients it was not tuned or
reported on: the soft-tissue sarcoma patients of the training recipe's *tune* split
(``examples/datasets/tune_3d.json``), never the 19 objects of
``examples/datasets/interactive_3d.json`` nor the held-out patients that the README reports.

Variants (``WalkConfig``): a click's disc edit on top of the model's mask where they
disagree (``edit_model_clicks``, the default) or the model's mask alone; the walk giving
each slice its neighbour's mask (``neighbour_prompt``, the default) or boxes alone.

    python benchmarks/bench_interactive_model.py [--description D.json] [--weights NAME|--checkpoint F]

Prints the median DSC over objects at each step (box, then 5 clicks) per variant, with n.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from medsam import load_model
    from medsam.datasets.description import load_description
    from medsam.evaluation import interactive as ia
    from medsam.evaluation.interactive_drivers import SessionDriver
    from medsam.evaluation.interactive_results import step_medians
    from medsam.segmentation import MedSAMSegmenter
    from medsam.segmentation.embedding_store import configured_store
    from medsam.segmentation.engine import DEFAULT_WALK

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--description", default=str(ROOT / "examples/datasets/tune_3d.json"))
    parser.add_argument("--weights", default="lite_interactive", help="weights name or checkpoint file")
    parser.add_argument("--datasets", help="only these datasets of the description (A,B)")
    args = parser.parse_args(argv)
    description = load_description(args.description)
    seg = MedSAMSegmenter(load_model(args.weights), cache_slices=4096, store=configured_store())
    for name, config in (("model mask + click edits (default)", DEFAULT_WALK),
                         ("model mask alone", replace(DEFAULT_WALK, edit_model_clicks=False)),
                         ("walk with boxes alone (no neighbour mask)", replace(DEFAULT_WALK, neighbour_prompt=False))):
        chosen = args.datasets.split(",") if args.datasets else None
        objects = ia.object_summary(ia.run_description(description, SessionDriver(seg, config), chosen))
        medians = step_medians(objects)
        worst = min(o["dsc"][-1] for o in objects)
        print(f"{name}: median DSC by step {', '.join(f'{100 * v:.1f}' for v in medians)}; worst final "
              f"{100 * worst:.1f} (n = {len(objects)} objects)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
