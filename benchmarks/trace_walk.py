"""How far one box prompt travels through the package: files entered and re-entered.

Runs ``segment_file`` on the README's kidney box (``example_ct_sm.nii.gz``, ``--box
70,29,90,48 --slice 8 --slices 0,18``) with LiteMedSAM and records every call between two
functions of ``medsam``. Each distinct call (caller -> callee) is kept once, the first time it
happens, so a loop over 19 slices counts as one pass. The calls are walked depth first, as a
reader following the code would, and the file is noted at every step, on the way in and on
the way back. A stop is a run of steps in one file:

- **stops**: how many times the reader lands in a file;
- **files**: how many different files;
- **re-entries**: stops in a file the reader had already left.

    python benchmarks/trace_walk.py            # prints the three counts and the file sequence
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import medsam

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(medsam.__file__).resolve().parent
SHARED = ROOT.parent / "shared" / "data"


def trace_calls(run) -> tuple[dict, list]:
    """Run ``run()`` under a profiler; return each function's callees in first-call order,
    and the roots (functions called from outside the package)."""
    children: dict[tuple, list] = defaultdict(list)
    seen: set[tuple] = set()
    roots: list[tuple] = []

    def key(frame) -> tuple | None:
        path = Path(frame.f_code.co_filename)
        if not path.is_relative_to(PACKAGE):
            return None
        return (str(path.relative_to(PACKAGE)), frame.f_code.co_qualname)

    def profile(frame, event, arg):
        if event != "call":
            return
        callee = key(frame)
        if callee is None or callee[1] in ("<module>", "<genexpr>", "<listcomp>", "<dictcomp>", "<lambda>"):
            return
        caller_frame = frame.f_back
        caller = None
        while caller_frame is not None and caller is None:
            caller = key(caller_frame)
            if caller is not None and caller[1] in ("<genexpr>", "<listcomp>", "<dictcomp>", "<lambda>"):
                caller = None
            caller_frame = caller_frame.f_back
        if caller is None:
            if callee not in roots:
                roots.append(callee)
            return
        if (caller, callee) not in seen:
            seen.add((caller, callee))
            children[caller].append(callee)

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return children, roots


def file_walk(children: dict, roots: list, within: tuple[str, ...] = ()) -> list[str]:
    """The file at every step of a depth-first walk of the calls (in and back out), kept to
    files whose path starts with one of ``within`` (all files when empty)."""
    steps: list[str] = []
    visited: set[tuple] = set()

    def visit(node: tuple) -> None:
        steps.append(node[0])
        if node in visited:   # a function already read: its calls are not walked twice
            return
        visited.add(node)
        for child in children.get(node, []):
            visit(child)
            steps.append(node[0])

    for root in roots:
        visit(root)
    if within:
        steps = [f for f in steps if f.startswith(within)]
    return [f for i, f in enumerate(steps) if i == 0 or steps[i - 1] != f]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequence", action="store_true", help="print the files in walk order")
    parser.add_argument("--within", default="segmentation/,predictor.py",
                        help="comma-separated path prefixes the walk is kept to ('' for every "
                             "file; default: the prompt's own path, without reading, model "
                             "code and writing)")
    args = parser.parse_args(argv)
    from medsam.loading import load_model
    from medsam.segmentation import BoxPrompt, MedSAMSegmenter
    from medsam.segmentation.batch import CaseOptions, segment_file

    model = load_model("lite_medsam")
    segmenter = MedSAMSegmenter(model)
    image = SHARED / "totalseg" / "example_ct_sm.nii.gz"
    prompt = BoxPrompt((70, 29, 90, 48), slice=8, z_range=(0, 18))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "seg.nii.gz"
        children, roots = trace_calls(lambda: segment_file(
            image, segmenter, out, CaseOptions(modality="ct"), boxes=[prompt]))
    for within in ((), tuple(p for p in args.within.split(",") if p)):
        stops = file_walk(children, roots, within)
        files = set(stops)
        print(f"{'within ' + ', '.join(within) if within else 'whole package'}: stops {len(stops)}, "
              f"files {len(files)}, re-entries {len(stops) - len(files)}")
        counts = sorted(((stops.count(f), f) for f in files), reverse=True)
        print("  entered most: " + ", ".join(f"{f} {n}" for n, f in counts[:6]))
        if args.sequence:
            print("  " + " -> ".join(stops))


if __name__ == "__main__":
    main()
