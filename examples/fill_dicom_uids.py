"""Copy a DICOM series, filling in the UIDs an anonymiser emptied, as a PACS export has them.

A DICOM SEG references its source series by the study, series and SOP instance UIDs. The
shared CT series (``../shared/data/totalseg/example_ct_dicom``) is anonymised with those
emptied, so ``medsam segment ... -o result.dcm`` refuses it. This copies the series with
new study and series UIDs (one each for the whole series) and each file's SOP instance and
class UID taken from its own file meta header; pixel data and every other element are
untouched. Needs pydicom (``pip install 'medsam-toolkit[dicom]'``).

    python examples/fill_dicom_uids.py ../shared/data/totalseg/example_ct_dicom out/ct_series
"""

from __future__ import annotations

import argparse
from pathlib import Path


def fill_uids(source: Path, target: Path) -> Path:
    """Write the series of ``source`` into the new folder ``target`` with its UIDs filled in."""
    import pydicom

    target.mkdir(parents=True, exist_ok=False)
    study, series = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    for path in sorted(p for p in source.iterdir() if p.is_file()):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID = ds.get("StudyInstanceUID") or study
        ds.SeriesInstanceUID = ds.get("SeriesInstanceUID") or series
        meta = ds.file_meta
        ds.SOPInstanceUID = ds.get("SOPInstanceUID") or meta.MediaStorageSOPInstanceUID
        ds.SOPClassUID = ds.get("SOPClassUID") or meta.MediaStorageSOPClassUID
        ds.save_as(target / path.name)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder of the series")
    parser.add_argument("target", type=Path, help="new folder for the copy")
    args = parser.parse_args()
    print(f"{fill_uids(args.source, args.target)}: {len(list(args.target.iterdir()))} files")


if __name__ == "__main__":
    main()
