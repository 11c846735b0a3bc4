"""Upload handling and the viewer's NIfTI, without a server."""

import gzip
import shutil
import struct
import zipfile

import numpy as np
import pytest

from medsam import io
from medsam.errors import InputError
from medsam.io import Geometry
from medsam.web.uploads import case_path, extract_zip, safe_name, viewer_nifti


def test_safe_name():
    assert safe_name("a/b/scan.nii.gz") == "scan.nii.gz" and safe_name("C:\\x\\slice1.dcm") == "slice1.dcm"
    for bad in ("", "..", "dir/..", ".hidden", "a\x00b"):
        with pytest.raises(InputError, match="not a usable file name"):
            safe_name(bad)


def test_extract_zip_guards(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("series/one.dcm", b"1")
        archive.writestr("series/.DS_Store", b"x")
        archive.writestr("__MACOSX/series/._one.dcm", b"x")
    folder = extract_zip(good, tmp_path / "out", max_bytes=100)
    assert [p.name.split("_", 1)[1] for p in folder.iterdir()] == ["one.dcm"]
    with pytest.raises(InputError, match="good.zip: .* once extracted"):
        extract_zip(good, tmp_path / "small", max_bytes=2)
    (tmp_path / "fake.zip").write_bytes(b"no zip")
    with pytest.raises(InputError, match="fake.zip: not a readable zip"):
        extract_zip(tmp_path / "fake.zip", tmp_path / "x", 100)


def test_case_path_picks_the_readable_case(tmp_path):
    one = tmp_path / "scan.nrrd"
    assert case_path([one], tmp_path, 10) == one
    pair = [tmp_path / "a.mhd", tmp_path / "a.raw"]
    assert case_path(pair, tmp_path, 10) == pair[0]
    slices = [tmp_path / f"{i}.dcm" for i in range(3)]
    assert case_path(slices, tmp_path, 10) == tmp_path
    with pytest.raises(InputError, match="no file uploaded"):
        case_path([], tmp_path, 10)


def test_viewer_nifti_rgb24_keeps_the_pixels_and_the_geometry_of_the_labels(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    geometry = Geometry((0.5, 0.25), origin=(3.0, -2.0))
    path = viewer_nifti(image, geometry, tmp_path / "viewer.nii.gz")
    raw = gzip.open(path).read()
    dims = struct.unpack_from("<8h", raw, 40)
    assert dims[:3] == (2, 7, 5) and struct.unpack_from("<hh", raw, 70) == (128, 24)
    offset = int(struct.unpack_from("<f", raw, 108)[0])
    np.testing.assert_array_equal(np.frombuffer(raw[offset:], np.uint8).reshape(5, 7, 3), image)
    io.write(np.zeros((5, 7), np.uint8), tmp_path / "labels.nii.gz", geometry)
    labels_header = gzip.open(tmp_path / "labels.nii.gz").read(348)
    for start, end in ((76, 108), (252, 348)):   # pixdim; qform/sform and the affine rows
        assert raw[start:end] == labels_header[start:end]
    grey = viewer_nifti(image[..., 0], geometry, tmp_path / "grey.nii.gz")
    np.testing.assert_array_equal(io.read(grey)[0], image[..., 0])


def test_a_missing_viewer_is_named_with_how_to_install_it(tmp_path):
    from medsam.errors import MedSAMError
    from medsam.web import create_app
    from medsam.web.assets import VIEWER_DIR

    with pytest.raises(MedSAMError, match=f"NiiVue viewer is not installed in {tmp_path}: it has no package.json"):
        create_app(lambda: None, viewer_dir=tmp_path)
    shutil.copyfile(VIEWER_DIR / "package.json", tmp_path / "package.json")
    with pytest.raises(MedSAMError, match=f"not installed in {tmp_path} \\(@niivue/niivue/dist/index.js is "
                                          f"missing\\): .*npm ci --prefix {tmp_path}`, or install a built wheel"):
        create_app(lambda: None, viewer_dir=tmp_path)


def test_the_viewer_is_found_where_a_wheel_or_npm_ci_put_it(tmp_path):
    """A wheel's flat ``assets/`` (by served name) or a checkout's ``node_modules``."""
    from medsam.web import viewer_files
    from medsam.web.assets import VIEWER_DIR, served_paths

    shutil.copyfile(VIEWER_DIR / "package.json", tmp_path / "package.json")
    served = served_paths(tmp_path)
    assert set(served) == {"niivue.js", "swagger-ui-bundle.js", "swagger-ui.css"}
    (tmp_path / "assets").mkdir()
    for name in served:
        (tmp_path / "assets" / name).write_text(name)
    assert viewer_files(tmp_path) == {name: tmp_path / "assets" / name for name in served}
    (tmp_path / "assets" / "niivue.js").unlink()
    module = tmp_path / "node_modules" / served["niivue.js"]
    module.parent.mkdir(parents=True)
    module.write_text("bundle")
    assert viewer_files(tmp_path)["niivue.js"] == module


def _lying_zip(path):
    """A zip whose member's header says 10 bytes; the data are 1 MB."""
    import io as bytes_io
    import struct

    buf = bytes_io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.dcm", b"\0" * 1_000_000)
    data = bytearray(buf.getvalue())
    struct.pack_into("<I", data, data.find(b"PK\x03\x04") + 22, 10)
    struct.pack_into("<I", data, data.find(b"PK\x01\x02") + 24, 10)
    path.write_bytes(bytes(data))
    return path


def test_a_zip_whose_headers_lie_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"lie.zip: member 'a.dcm' is damaged or does not match its header"):
        extract_zip(_lying_zip(tmp_path / "lie.zip"), tmp_path / "out", 2_000_000)


def test_public_messages_name_uploads_as_the_user_named_them(tmp_path):
    from medsam.web.uploads import public_message

    root = tmp_path / "medsam-web-x"
    assert public_message(f"{root}/s1/upload/nan.nii.gz: 3 voxels are NaN", root) == \
        "nan.nii.gz: 3 voxels are NaN"
    assert public_message(f"{root}/s1/upload/series/000003_x.dcm: damaged; {root}/s1/upload/series: "
                          f"gap", root) == "x.dcm: damaged; the uploaded series: gap"
    assert public_message(f"{root}/s1/upload: holds 2 DICOM series", root) == \
        "the uploaded series: holds 2 DICOM series"
