"""A CT opened lazily (flr.io.open_image, issue 14 item 2): the geometry and metadata of the full read at once,
the voxels of a box equal to the full read's, decoding only what the box needs (a DICOM series: the files of
its slices), and the full read's one-line errors, on the sample case, on written oblique anisotropic series and
NIfTI files, and on real public files in ../shared/data (skipped when absent)."""

from __future__ import annotations

import gzip
import pickle
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

import flr.io.dicom as dicom
import flr.io.nifti as nifti
from flr.errors import GeometryError, InputFileError
from flr.image import Geometry, Image, LazyImage
from flr.io import open_image, read_image, read_image_header, write_nifti
from flr.io.dicom import open_dicom, write_dicom_series
from tests.helpers import run_cli_bad

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "phantom-001"
#: Boxes of the sample grid (101, 154, 208): the liver's part, edges, one voxel, one slice, the whole grid.
SAMPLE_BOXES = [
    (slice(31, 81), slice(20, 110), slice(15, 140)),
    (slice(0, 1), slice(0, 154), slice(0, 208)),
    (slice(100, 101), slice(153, 154), slice(207, 208)),
    (slice(50, 51), slice(77, 78), slice(3, 4)),
    (slice(None), slice(None), slice(None)),
]


def oblique_ct(shape=(9, 40, 48), seed=3, peak_hu=2000) -> Image:
    """Seeded integer HU on an oblique (25 degrees about x), anisotropic (0.7 x 0.8 x 2.5 mm) grid."""
    rng = np.random.default_rng(seed)
    c, s = np.cos(np.deg2rad(25)), np.sin(np.deg2rad(25))
    geometry = Geometry(shape, (0.7, 0.8, 2.5), (-10.5, 20.25, 3.0), (1.0, 0.0, 0.0, 0.0, c, -s, 0.0, s, c))
    return Image(rng.integers(-1024, peak_hu + 1, shape).astype(np.int16), geometry)


def boxes_of(shape) -> list[tuple[slice, slice, slice]]:
    """A few boxes of a grid: inner, at each corner, one voxel, the whole grid."""
    z, y, x = shape
    return [(slice(1, z - 1), slice(2, y - 3), slice(5, x - 4)),
            (slice(0, 2), slice(0, 3), slice(0, x)),
            (slice(z - 2, z), slice(y - 1, y), slice(x - 7, x)),
            (slice(z // 2, z // 2 + 1), slice(y // 2, y // 2 + 1), slice(1, 2)),
            (slice(0, z), slice(0, y), slice(0, x))]


def assert_lazy_equals_full(path: Path, boxes, *, partial: bool = True, **kwargs) -> LazyImage:
    """open_image's geometry, source and metadata are read_image's; every box's values are the full array's,
    read-only, decoded without decoding the whole volume (``partial``; else by decoding it once); its array
    (decoded last) is the full read's."""
    full = read_image(path, **kwargs)
    lazy = open_image(path, **kwargs)
    assert isinstance(lazy, LazyImage) and not lazy.decoded
    assert lazy.geometry == full.geometry and lazy.source == full.source and lazy.metadata == full.metadata
    for box in boxes:
        got = lazy.region(box)
        want = full.array[box]
        assert got.shape == want.shape and np.array_equal(got, want), box
        assert not got.flags.writeable
    assert lazy.decoded is not partial
    assert lazy.array.dtype == full.array.dtype and np.array_equal(lazy.array, full.array)
    assert lazy.decoded
    return lazy


def count_decoded_files(monkeypatch) -> list[Path]:
    """The DICOM files decoded from now on (in this process), in order."""
    seen: list[Path] = []
    decode = dicom._decode_array

    def counting(path):
        seen.append(Path(path))
        return decode(path)

    monkeypatch.setattr(dicom, "_decode_array", counting)
    return seen


# --- the sample case -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ct_dicom", "ct.nii.gz"])
def test_sample_case_boxes_equal_the_full_read(name):
    lazy = assert_lazy_equals_full(SAMPLE / name, SAMPLE_BOXES)
    assert lazy.metadata.get("study_date") == read_image_header(SAMPLE / name).metadata.get("study_date")


def test_opening_decodes_nothing_and_a_box_decodes_only_its_slices(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("opening decoded voxels")

    monkeypatch.setattr(dicom, "_decode", refuse)
    monkeypatch.setattr(nifti, "_array_zyx", refuse)
    monkeypatch.setattr(nifti, "_box_zyx", refuse)
    dcm, nii = open_image(SAMPLE / "ct_dicom"), open_image(SAMPLE / "ct.nii.gz")
    assert "not decoded" in repr(dcm) and "not decoded" in repr(nii)
    monkeypatch.undo()
    seen = count_decoded_files(monkeypatch)
    dcm.region((slice(40, 43), slice(10, 20), slice(0, 208)))
    assert [p.name for p in seen] == ["CT00041.dcm", "CT00042.dcm", "CT00043.dcm"] and not dcm.decoded


def test_region_of_a_plain_image_and_bad_boxes():
    image = Image(np.arange(60, dtype=np.int16).reshape(3, 4, 5), Geometry((3, 4, 5)))
    assert np.array_equal(image.region((slice(1, 3), slice(None), slice(-2, None))), image.array[1:3, :, -2:])
    lazy = open_image(SAMPLE / "ct.nii.gz")
    for bad in [(slice(0, 1), slice(0, 1)), (slice(0, 4, 2), slice(0, 1), slice(0, 1)),
                (slice(5, 5), slice(0, 1), slice(0, 1)), (0, slice(0, 1), slice(0, 1))]:
        with pytest.raises(GeometryError, match="box"):
            lazy.region(bad)
    assert not lazy.decoded


def test_a_lazy_image_pickles_and_compares_by_identity():
    lazy = open_image(SAMPLE / "ct_dicom")
    again = pickle.loads(pickle.dumps(lazy))  # noqa: S301 - our own object; a Dask task may receive one
    box = (slice(30, 32), slice(0, 5), slice(0, 5))
    assert np.array_equal(again.region(box), lazy.region(box)) and again.metadata == lazy.metadata
    assert lazy == lazy and lazy != again and not lazy.decoded and len({lazy, again}) == 2


# --- written series and files: oblique, anisotropic, rescaled --------------------------------------------
@pytest.mark.parametrize("transfer_syntax", ["explicit-little", "jpeg2000-lossless"])
def test_dicom_boxes_on_an_oblique_anisotropic_grid(tmp_path, transfer_syntax):
    image = oblique_ct()
    write_dicom_series(image, tmp_path, transfer_syntax=transfer_syntax, shuffle_names=True, seed=2)
    lazy = assert_lazy_equals_full(tmp_path, boxes_of(image.geometry.shape_zyx))
    assert lazy.geometry.is_oblique() and np.array_equal(lazy.array, image.array)


def test_dicom_boxes_decoded_by_several_processes(tmp_path):
    image = oblique_ct(shape=(8, 64, 64))
    write_dicom_series(image, tmp_path, transfer_syntax="jpeg2000-lossless")
    geometry, _, voxels = open_dicom(tmp_path, decode_workers=2)
    lazy = LazyImage(geometry, str(tmp_path), {}, voxels)
    for box in boxes_of(geometry.shape_zyx):
        assert np.array_equal(lazy.region(box), image.array[box])


def test_dicom_rescale_per_slice_and_float32_when_a_kept_slice_needs_it(tmp_path):
    """Slope and intercept differ between slices; one slice holds 40 000 HU (beyond int16): the full read is
    float32, a box holding that slice too, a box without it int16 with the very same values."""
    image = oblique_ct(shape=(6, 32, 32), seed=4)
    array = np.array(image.array, dtype=np.int32)
    array[4, 3, 4] = 40_000
    paths = write_dicom_series(image.with_array(array), tmp_path, rescale_intercept=-1024)
    ds = pydicom.dcmread(paths[1])  # slice 1: slope 2, intercept -2048 (stored values halved)
    stored = ds.pixel_array.astype(np.int32)
    ds.PixelData = ((stored * 1 - 1024 + 2048) // 2).astype(np.uint16).tobytes()
    ds.RescaleSlope, ds.RescaleIntercept = 2, -2048
    ds.save_as(paths[1], enforce_file_format=True)
    full = read_image(tmp_path)
    assert full.array.dtype == np.float32
    assert_lazy_equals_full(tmp_path, boxes_of((6, 32, 32)))
    lazy = open_image(tmp_path)  # nothing decoded yet: each box is decoded on its own
    with_peak, without = (slice(3, 6), slice(0, 8), slice(0, 8)), (slice(0, 3), slice(0, 32), slice(0, 32))
    assert lazy.region(with_peak).dtype == np.float32 and float(lazy.region(with_peak).max()) == 40_000
    assert lazy.region(without).dtype == np.int16 and np.array_equal(lazy.region(without), full.array[without])
    assert not lazy.decoded


def test_dicom_non_integral_slope_is_float32_in_every_box(tmp_path):
    image = oblique_ct(shape=(4, 16, 16), seed=5)
    write_dicom_series(image, tmp_path, rescale_slope=0.5, rescale_intercept=-1024.25)
    assert_lazy_equals_full(tmp_path, boxes_of((4, 16, 16)))
    assert open_image(tmp_path).region((slice(0, 1), slice(0, 2), slice(0, 2))).dtype == np.float32


def test_a_resampled_dicom_series_is_decoded_once_in_full(tmp_path):
    image = oblique_ct(shape=(5, 12, 16), seed=6)
    paths = write_dicom_series(image, tmp_path)
    paths[2].unlink()  # irregular: regridded along z, which reads neighbouring slices
    lazy = assert_lazy_equals_full(tmp_path, boxes_of((5, 12, 16)), partial=False, resample=True)
    assert lazy.metadata["resampled"]


@pytest.mark.parametrize("name", ["ct.nii", "ct.nii.gz"])
def test_nifti_boxes_on_an_oblique_anisotropic_grid(tmp_path, name):
    image = oblique_ct(shape=(7, 30, 41))
    write_nifti(image, tmp_path / name)
    lazy = assert_lazy_equals_full(tmp_path / name, boxes_of((7, 30, 41)))
    assert lazy.geometry.is_oblique()


@pytest.mark.parametrize(("slope", "inter", "dtype"), [(0.5, -1024.0, np.float32), (2.0, -3.0, np.int16),
                                                        (1.0, 0.0, ">i2")])
def test_nifti_scaled_and_big_endian(tmp_path, slope, inter, dtype):
    """Scaled (float32; integral scaling stays integer) and big-endian data: the box's values are the full read's."""
    raw = np.random.default_rng(8).integers(-500, 1500, (6, 20, 24)).astype(np.int16)
    affine = np.array([[-0.7, 0, 0, 10], [0, -0.9, 0.1, 20], [0, 0.05, 2.5, 30], [0, 0, 0, 1.0]])
    affine[:3, :3] = np.linalg.qr(affine[:3, :3])[0] @ np.diag([0.7, 0.9, 2.5])
    img = nib.Nifti1Image(raw.transpose(2, 1, 0).astype(dtype), affine)
    img.header.set_slope_inter(slope, inter)
    img.set_sform(affine, code=1)
    nib.save(img, tmp_path / "ct.nii.gz")
    assert_lazy_equals_full(tmp_path / "ct.nii.gz", boxes_of((6, 20, 24)))


def test_nrrd_is_read_in_full(tmp_path):
    header = (b"NRRD0004\ntype: short\ndimension: 3\nsizes: 4 3 2\nendian: little\nspace: LPS\n"
              b"space directions: (0.5,0,0) (0,0.8,0) (0,0,2.5)\nspace origin: (10,20,30)\nencoding: raw\n\n")
    (tmp_path / "ct.nrrd").write_bytes(header + np.arange(24, dtype="<i2").tobytes())
    opened = open_image(tmp_path / "ct.nrrd")
    assert not isinstance(opened, LazyImage)
    assert np.array_equal(opened.region((slice(1, 2), slice(0, 3), slice(2, 4))), opened.array[1:2, :, 2:4])


# --- errors: the full read's, one line, naming the file ----------------------------------------------------
def _undecodable(path: Path) -> None:
    """Break a JPEG 2000 file's codestream header (its COD marker) so that only the decoder finds it."""
    data = bytearray(path.read_bytes())
    at = data.find(b"\xff\x52")
    assert at > 0
    data[at:at + 2] = b"\x00\x00"
    path.write_bytes(bytes(data))


def _message(call) -> str:
    with pytest.raises(InputFileError) as err:
        call()
    assert "\n" not in str(err.value)
    return str(err.value)


def test_truncated_or_mislabelled_pixel_data_anywhere_is_refused_on_opening(tmp_path):
    """Found without decoding, wherever the slice lies: open_image refuses it as read_image does."""
    image = oblique_ct(shape=(6, 16, 16))
    paths = write_dicom_series(image, tmp_path / "trunc")
    paths[5].write_bytes(paths[5].read_bytes()[:-100])
    want = _message(lambda: read_image(tmp_path / "trunc"))
    assert want.startswith(f"{paths[5]}: pixel data holds") and _message(lambda: open_image(tmp_path / "trunc")) == want
    paths = write_dicom_series(image, tmp_path / "rows")
    ds = pydicom.dcmread(paths[0])
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 3, "RGB"
    ds.save_as(paths[0], enforce_file_format=True)
    want = _message(lambda: read_image(tmp_path / "rows"))
    assert "only greyscale" in want and _message(lambda: open_image(tmp_path / "rows")) == want


def test_an_undecodable_slice_inside_a_box_fails_as_the_full_read(tmp_path):
    shutil.copytree(SAMPLE / "ct_dicom", tmp_path / "ct")
    _undecodable(tmp_path / "ct" / "CT00051.dcm")
    want = _message(lambda: read_image(tmp_path / "ct"))
    assert want.startswith(f"{tmp_path / 'ct' / 'CT00051.dcm'}: cannot decode pixel data")
    lazy = open_image(tmp_path / "ct")  # the headers and the pixel data's size are sound
    assert _message(lambda: lazy.region((slice(45, 55), slice(0, 10), slice(0, 10)))) == want
    assert _message(lambda: lazy.array) == want and not lazy.decoded


def test_an_undecodable_slice_outside_every_box_read_is_not_found(tmp_path):
    """Decided (flr.io.open_image): damage only a decoder finds, in a slice no box asks for, is not found; the
    values read are those of the intact series. Asking for the whole volume finds it."""
    shutil.copytree(SAMPLE / "ct_dicom", tmp_path / "ct")
    _undecodable(tmp_path / "ct" / "CT00003.dcm")
    lazy = open_image(tmp_path / "ct")
    box = SAMPLE_BOXES[0]
    assert np.array_equal(lazy.region(box), read_image(SAMPLE / "ct_dicom").array[box])
    assert "CT00003.dcm: cannot decode pixel data" in _message(lambda: lazy.array)


def test_a_gzip_stream_cut_short(tmp_path):
    image = oblique_ct(shape=(8, 30, 30))
    write_nifti(image, tmp_path / "full.nii.gz")
    blob = gzip.decompress((tmp_path / "full.nii.gz").read_bytes())
    (tmp_path / "ct.nii.gz").write_bytes(gzip.compress(blob)[:-2000])  # the last slices are lost
    want = _message(lambda: read_image(tmp_path / "ct.nii.gz"))
    assert want.startswith(f"{tmp_path / 'ct.nii.gz'}: NIfTI data is truncated or corrupt")
    lazy = open_image(tmp_path / "ct.nii.gz")
    assert _message(lambda: lazy.region((slice(5, 8), slice(0, 30), slice(0, 30)))).startswith(want.split(" (")[0])
    early = (slice(0, 2), slice(0, 30), slice(0, 30))  # before the cut: the intact values
    assert np.array_equal(lazy.region(early), image.array[early])


# --- the command line: errors on one line, results as with the full read -------------------------------
def test_cli_an_undecodable_slice_in_the_liver_is_one_line_naming_the_file(tmp_path, capsys):
    shutil.copytree(SAMPLE / "ct_dicom", tmp_path / "ct")
    _undecodable(tmp_path / "ct" / "CT00051.dcm")
    labels = ["--labels", SAMPLE / "labels.nii.gz", "--labels", SAMPLE / "liver.nii.gz"]
    for command in (["volumetry", *labels], ["assess", *labels, "--plan", "right-hemihepatectomy"]):
        err = run_cli_bad([*command, "--ct", tmp_path / "ct", "--json", tmp_path / "out.json", "-q"], capsys)
        assert "CT00051.dcm: cannot decode pixel data" in err, err
        assert not (tmp_path / "out.json").exists()
