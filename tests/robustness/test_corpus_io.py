"""A corpus of bad and odd reader inputs, each run through the command line with its exact outcome.

Every case builds its input in ``tmp_path``: from small seeded synthetic arrays, or from a corrupted copy of
a file of ``../shared/data`` (never the file itself; cases that need one skip when the folder is absent; see
its SOURCES.md for source and licence). It then runs ``flr volumetry --labels ... [--ct ...]`` in-process and
checks the outcome the case states:

* ``("refused", words)``: exit code 2 and one line ``flr: error: ...`` that contains ``words`` (no
  traceback, no ``internal error``);
* ``("warned", words)``: exit code 0 and ``words`` in a ``warning:`` line of the output;
* ``("accepted", None)``: exit code 0.

The synthetic CT is a 5-slice 16 x 16 series (0.8 x 0.8 x 2.5 mm) of soft-tissue values with a liver mask on
its grid, written once per module as NIfTI, DICOM, DICOM-SEG and RTSTRUCT.
"""

from __future__ import annotations

import bz2
import gzip
import io
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from flr.image import Geometry, Image, LabelMap
from flr.io import write_nifti
from flr.io.dicom import read_dicom, write_dicom_series
from flr.io.dicomseg import write_dicom_seg
from tests.helpers import run_cli, run_cli_bad

SHAPE = (5, 16, 16)
GEOMETRY = Geometry(SHAPE, (0.8, 0.8, 2.5), (-10.0, 20.0, 30.0))


@dataclass(frozen=True)
class Base:
    """The module's clean inputs: CT as NIfTI and DICOM, a liver mask on its grid, a DICOM-SEG of it."""

    ct_nifti: Path
    series: Path
    liver: Path
    liver_array: np.ndarray
    seg: Path
    series_uid: str
    frame_of_reference_uid: str


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Base:
    root = tmp_path_factory.mktemp("corpus-base")
    rng = np.random.default_rng(10)
    ct = Image(rng.integers(20, 80, SHAPE).astype(np.int16), GEOMETRY)  # soft tissue: the liver sanity check holds
    liver = np.zeros(SHAPE, np.uint8)
    liver[1:4, 4:12, 3:11] = 1
    write_nifti(ct, root / "ct.nii.gz")
    write_nifti(Image(liver, GEOMETRY), root / "liver.nii.gz")
    write_dicom_series(ct, root / "series")
    dicom_ct = read_dicom(root / "series")
    seg = write_dicom_seg(LabelMap(liver, dicom_ct.geometry, "liver", {}, names={1: "liver"}), root / "seg.dcm",
                          reference=dicom_ct)
    return Base(root / "ct.nii.gz", root / "series", root / "liver.nii.gz", liver, seg,
                dicom_ct.metadata["series_instance_uid"], dicom_ct.metadata["frame_of_reference_uid"])


@dataclass(frozen=True)
class Ctx:
    tmp: Path
    base: Base
    shared: Path | None


# ----------------------------------------------------------------------------------------------
# builders: NIfTI
# ----------------------------------------------------------------------------------------------
def _nifti(path: Path, data_zyx: np.ndarray, *, affine: np.ndarray | None = None, qform: np.ndarray | None = None,
           codes: tuple[int, int] = (1, 1), edit: Callable[[Any], None] | None = None) -> Path:
    """Write ``data_zyx`` as NIfTI (sform and qform codes ``codes``), then overwrite header fields with
    ``edit(header)`` in the bytes as stored (nibabel would recompute them on save)."""
    affine = np.diag([-0.8, -0.8, 2.5, 1.0]) if affine is None else affine
    data_ijk = np.ascontiguousarray(data_zyx).transpose(2, 1, 0, *range(3, data_zyx.ndim))
    img = nib.Nifti1Image(data_ijk, affine)
    img.set_sform(affine, code=codes[0])
    img.set_qform(affine if qform is None else qform, code=codes[1])
    nib.save(img, path)
    if edit is not None:
        compressed = path.name.endswith(".gz")
        blob = gzip.decompress(path.read_bytes()) if compressed else path.read_bytes()
        header = nib.Nifti1Header.from_fileobj(io.BytesIO(blob[:348]), check=False)
        edit(header)
        blob = header.binaryblock + blob[348:]
        path.write_bytes(gzip.compress(blob) if compressed else blob)
    return path


def _mask(dtype: Any = np.uint8, value: float = 1) -> np.ndarray:
    out = np.zeros(SHAPE, dtype)
    out[1:4, 4:12, 3:11] = value
    return out


def _set(field: str, index: int | slice, value: Any) -> Callable[[Any], None]:
    def edit(header: Any) -> None:
        header[field][index] = value
    return edit


def labels(path: Path, scheme: str | None = None) -> list[str]:
    return ["volumetry", "--labels", f"{path}:{scheme}" if scheme else str(path)]


def nifti_case(name: str, data: np.ndarray | None = None, **kw: Any) -> Callable[[Ctx], list[str]]:
    def build(c: Ctx) -> list[str]:
        return labels(_nifti(c.tmp / name, _mask() if data is None else data, **kw))
    return build


def nifti_huge(c: Ctx) -> list[str]:
    return labels(_nifti(c.tmp / "liver.nii", _mask(), edit=_set("dim", slice(1, 4), 30000)))


def nifti_huge_gz(c: Ctx) -> list[str]:
    return labels(_nifti(c.tmp / "liver.nii.gz", _mask(), edit=_set("dim", slice(1, 4), 30000)))


def nifti_truncated_gz(c: Ctx) -> list[str]:
    big = np.random.default_rng(3).integers(0, 2, (40, 40, 40)).astype(np.uint8)
    path = _nifti(c.tmp / "liver.nii.gz", big)
    path.write_bytes(path.read_bytes()[:2000])
    return labels(path)


def nifti_rgb_ct(c: Ctx) -> list[str]:
    rgb = np.zeros(SHAPE, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    return ["volumetry", "--ct", str(_nifti(c.tmp / "ct.nii", rgb)), "--labels", str(c.base.liver)]


def nifti_text(c: Ctx) -> list[str]:
    (c.tmp / "liver.nii.gz").write_text("patient notes, not an image\n")
    return labels(c.tmp / "liver.nii.gz")


def nifti_empty_file(c: Ctx) -> list[str]:
    (c.tmp / "liver.nii").write_bytes(b"")
    return labels(c.tmp / "liver.nii")


def nifti_scaled_labels(c: Ctx) -> list[str]:
    def edit(header: Any) -> None:
        header["scl_slope"] = 2.0
        header["scl_inter"] = 0.0
    return labels(_nifti(c.tmp / "liver.nii", _mask(), edit=edit))


def msd8_float_vessels(c: Ctx) -> list[str]:
    assert c.shared is not None
    vessel = sorted((c.shared / "couinaud-msd8" / "vessel").glob("*.nii.gz"))[0]
    return labels(vessel, "msd-hepaticvessel")


def msd8_fractional_copy(c: Ctx) -> list[str]:
    """MSD8's float64 vessel mask with one voxel made 0.5: a fraction is refused, never rounded."""
    assert c.shared is not None
    vessel = sorted((c.shared / "couinaud-msd8" / "vessel").glob("*.nii.gz"))[0]
    img = nib.load(vessel)
    data = np.asarray(img.dataobj).copy()
    data[tuple(np.argwhere(data == 1)[0])] = 0.5
    out = c.tmp / "vessel.nii.gz"
    nib.save(nib.Nifti1Image(data, img.affine, img.header), out)
    return labels(out, "msd-hepaticvessel")


def totalseg_pixdim_copy(c: Ctx) -> list[str]:
    """TotalSegmentator's liver map (sform only) with pixdim[1] zeroed in a copy: refused, not read as 1 mm."""
    assert c.shared is not None
    blob = gzip.decompress((c.shared / "totalsegmentator" / "example_seg.nii.gz").read_bytes())
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(blob[:348]), check=False)
    header["pixdim"][1] = 0.0
    out = c.tmp / "example_seg.nii.gz"
    out.write_bytes(gzip.compress(header.binaryblock + blob[348:]))
    return labels(out, "totalseg-total")


# ----------------------------------------------------------------------------------------------
# builders: NRRD and .seg.nrrd
# ----------------------------------------------------------------------------------------------
NRRD_GRID = ["dimension: 3", "space: left-posterior-superior", "space directions: (0.8,0,0) (0,0.8,0) (0,0,2.5)",
             "space origin: (-10,20,30)", "endian: little"]


def _nrrd(path: Path, lines: list[str], payload: bytes) -> Path:
    path.write_bytes(("\n".join(["NRRD0004", *lines]) + "\n\n").encode() + payload)
    return path


def nrrd_case(name: str, lines: list[str], payload: Callable[[], bytes], scheme: str | None = None
              ) -> Callable[[Ctx], list[str]]:
    def build(c: Ctx) -> list[str]:
        return labels(_nrrd(c.tmp / name, lines, payload()), scheme)
    return build


def _mask_bytes(dtype: Any = np.uint8, value: float = 1) -> bytes:
    return _mask(dtype, value).tobytes()


SEG_HEADER = ["Segment0_Name:=liver", "Segment0_LabelValue:=1", "Segment0_Layer:=0",
              "Segment1_Name:=tumor", "Segment1_LabelValue:=2", "Segment1_Layer:=0"]


def slicer_truncated_copy(c: Ctx) -> list[str]:
    assert c.shared is not None
    blob = (c.shared / "slicerio" / "Segmentation.seg.nrrd").read_bytes()
    out = c.tmp / "Segmentation.seg.nrrd"
    out.write_bytes(blob[: len(blob) * 2 // 3])
    return labels(out)


def slicer_real(c: Ctx) -> list[str]:
    assert c.shared is not None
    out = c.tmp / "SegmentationOverlapping.seg.nrrd"
    shutil.copy(c.shared / "slicerio" / "SegmentationOverlapping.seg.nrrd", out)
    return labels(out)


# ----------------------------------------------------------------------------------------------
# builders: DICOM series (the CT, --ct), with the NIfTI liver mask on its grid
# ----------------------------------------------------------------------------------------------
def _series(c: Ctx) -> tuple[Path, list[Path]]:
    folder = c.tmp / "ct"
    shutil.copytree(c.base.series, folder)
    return folder, sorted(folder.iterdir())


def _edit(path: Path, **values: Any) -> None:
    ds = pydicom.dcmread(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pydicom warns when told to write 'nan': that is the point
        for key, value in values.items():
            if value is None:
                delattr(ds, key)
            else:
                setattr(ds, key, value)
        ds.save_as(path, enforce_file_format=True)


def with_ct(folder: Path, c: Ctx) -> list[str]:
    return ["volumetry", "--ct", str(folder), "--labels", str(c.base.liver)]


def dicom_edit(which: int | None, **values: Any) -> Callable[[Ctx], list[str]]:
    """The series with ``values`` set in slice ``which`` (every slice when None)."""
    def build(c: Ctx) -> list[str]:
        folder, paths = _series(c)
        for path in paths if which is None else [paths[which]]:
            _edit(path, **values)
        return with_ct(folder, c)
    return build


def dicom_missing_slice(c: Ctx) -> list[str]:
    folder, paths = _series(c)
    paths[2].unlink()
    return with_ct(folder, c)


def dicom_j2k_rows(c: Ctx) -> list[str]:
    big = Geometry((3, 32, 32), (0.8, 0.8, 2.5))
    folder = c.tmp / "j2k"
    paths = write_dicom_series(Image(np.full(big.shape_zyx, 40, np.int16), big), folder,
                               transfer_syntax="jpeg2000-lossless")
    for path in paths:
        _edit(path, Rows=4096, Columns=4096)
    liver = np.zeros(big.shape_zyx, np.uint8)
    liver[1, 10:20, 10:20] = 1
    write_nifti(Image(liver, big), c.tmp / "liver.nii.gz")
    return ["volumetry", "--ct", str(folder), "--labels", str(c.tmp / "liver.nii.gz")]


def _slice_like(c: Ctx, name: str, **values: Any) -> Path:
    """A copy of the series' middle slice, as a new instance, with ``values`` set."""
    folder = c.tmp / "ct"
    target = folder / name
    shutil.copy(c.base.series / "CT00003.dcm", target)
    uid = generate_uid()
    _edit(target, SOPInstanceUID=uid, **values)
    ds = pydicom.dcmread(target)
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.save_as(target, enforce_file_format=True)
    return target


def dicom_anonymised(c: Ctx) -> list[str]:
    folder, paths = _series(c)
    for path in paths:
        _edit(path, SeriesInstanceUID=None, StudyInstanceUID="")
    return with_ct(folder, c)


def dicom_localizer(c: Ctx) -> list[str]:
    folder, _ = _series(c)
    _slice_like(c, "scout.dcm", ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"], SeriesInstanceUID=generate_uid(),
                ImageOrientationPatient=[1, 0, 0, 0, 0, -1], ImagePositionPatient=[0, 0, 0])
    return with_ct(folder, c)


def dicom_other_modality(c: Ctx) -> list[str]:
    folder, _ = _series(c)
    _slice_like(c, "pet.dcm", Modality="PT", SOPClassUID=pydicom.uid.PositronEmissionTomographyImageStorage,
                ImagePositionPatient=[-10, 20, 31.25])
    return with_ct(folder, c)


def dicom_secondary_capture(c: Ctx) -> list[str]:
    """A dose screen saved as a Secondary Capture in the CT's own series, with patient geometry."""
    folder, _ = _series(c)
    _slice_like(c, "dose-screen.dcm", SOPClassUID=pydicom.uid.SecondaryCaptureImageStorage,
                ImagePositionPatient=[-10, 20, 31.25])
    return with_ct(folder, c)


def dicom_dose_report(c: Ctx) -> list[str]:
    folder, _ = _series(c)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.XRayRadiationDoseSRStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "SR"
    ds.SeriesInstanceUID = generate_uid()
    ds.save_as(folder / "dose-report.dcm", enforce_file_format=True)
    return with_ct(folder, c)


def dicom_stray_files(c: Ctx) -> list[str]:
    folder, paths = _series(c)
    (folder / "README.txt").write_text("exported by a PACS\n")
    (folder / "broken.dcm").write_bytes(paths[0].read_bytes()[:300])  # cut inside the header
    return with_ct(folder, c)


def dicom_truncated_pixels(c: Ctx) -> list[str]:
    folder, paths = _series(c)
    paths[1].write_bytes(paths[1].read_bytes()[:-100])
    return with_ct(folder, c)


def dicom_rgb(c: Ctx) -> list[str]:
    folder, paths = _series(c)
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = bytes(16 * 16 * 3)
        ds.save_as(path, enforce_file_format=True)
    return with_ct(folder, c)


def dicom_two_series(c: Ctx) -> list[str]:
    folder, _ = _series(c)
    other = Image(np.zeros((2, 16, 16), np.int16), GEOMETRY.__class__((2, 16, 16), (0.8, 0.8, 5.0)))
    write_dicom_series(other, folder / "second", series_description="second")
    return with_ct(folder, c)


def dicom_real_missing_slice(c: Ctx) -> list[str]:
    assert c.shared is not None
    folder = c.tmp / "sliceincrement"
    shutil.copytree(c.shared / "dicom2nifti" / "sliceincrement" / "001", folder)
    return ["volumetry", "--ct", str(folder), "--labels", str(c.base.liver)]


# ----------------------------------------------------------------------------------------------
# builders: DICOM-SEG and RTSTRUCT (on the DICOM CT, --ct)
# ----------------------------------------------------------------------------------------------
def seg_on_ct(c: Ctx, seg: Path) -> list[str]:
    return ["volumetry", "--ct", str(c.base.series), "--labels", str(seg)]


def seg_valid(c: Ctx) -> list[str]:
    return seg_on_ct(c, c.base.seg)


def seg_truncated(c: Ctx) -> list[str]:
    out = c.tmp / "seg.dcm"
    out.write_bytes(c.base.seg.read_bytes()[:-40])
    return seg_on_ct(c, out)


def seg_edit(**values: Any) -> Callable[[Ctx], list[str]]:
    def build(c: Ctx) -> list[str]:
        out = c.tmp / "seg.dcm"
        shutil.copy(c.base.seg, out)
        _edit(out, **values)
        return seg_on_ct(c, out)
    return build


def seg_empty_segment(c: Ctx) -> list[str]:
    ct = read_dicom(c.base.series)
    two = c.base.liver_array.copy()
    two[0, 0, 0] = 2  # a second segment of one voxel ...
    seg = write_dicom_seg(LabelMap(two, ct.geometry, "x", {}, names={1: "liver", 2: "tumor"}), c.tmp / "seg.dcm",
                          reference=ct)
    ds = pydicom.dcmread(seg)  # ... whose only frame is then emptied
    frames = ds.pixel_array.copy()
    frames[-1] = 0
    ds.PixelData = np.packbits(frames.reshape(-1), bitorder="little").tobytes()
    ds.save_as(seg, enforce_file_format=True)
    return seg_on_ct(c, seg)


def seg_real_dcmqi(c: Ctx) -> list[str]:
    assert c.shared is not None
    dcmqi = c.shared / "dcmqi"
    return ["volumetry", "--ct", str(dcmqi / "ct-3slice"), "--labels", str(dcmqi / "liver.dcm")]


def _rtstruct(path: Path, c: Ctx, *, contour: list[float] | None = None, series_uid: str | None = None,
              roi_number: int | None = 1) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.RTStructureSetStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID, ds.StudyInstanceUID = generate_uid(), generate_uid()
    series = Dataset()
    series.SeriesInstanceUID = series_uid or c.base.series_uid
    study = Dataset()
    study.RTReferencedSeriesSequence = Sequence([series])
    ref = Dataset()
    ref.FrameOfReferenceUID = c.base.frame_of_reference_uid
    ref.RTReferencedStudySequence = Sequence([study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([ref])
    roi = Dataset()
    if roi_number is not None:
        roi.ROINumber = roi_number
    roi.ROIName = "Liver"
    ds.StructureSetROISequence = Sequence([roi])
    item = Dataset()
    item.ContourGeometricType = "CLOSED_PLANAR"
    z = 30.0 + 2 * 2.5
    item.ContourData = contour if contour is not None else [-6.0, 24.0, z, -2.0, 24.0, z, -2.0, 28.0, z, -6.0, 28.0, z]
    roic = Dataset()
    if roi_number is not None:
        roic.ReferencedROINumber = roi_number
    roic.ContourSequence = Sequence([item])
    ds.ROIContourSequence = Sequence([roic])
    ds.save_as(path, enforce_file_format=True)
    return path


def rt_case(**kw: Any) -> Callable[[Ctx], list[str]]:
    def build(c: Ctx) -> list[str]:
        return seg_on_ct(c, _rtstruct(c.tmp / "rt.dcm", c, **kw))
    return build


def rt_truncated(c: Ctx) -> list[str]:
    path = _rtstruct(c.tmp / "rt.dcm", c)
    path.write_bytes(path.read_bytes()[:-30])
    return seg_on_ct(c, path)


def rt_real(c: Ctx) -> list[str]:
    assert c.shared is not None
    folder = c.tmp / "rt-utils"
    folder.mkdir()
    for name in ("ct_1.dcm", "ct_2.dcm", "rt.dcm"):
        shutil.copy(c.shared / "rt-utils" / name, folder / name)
    return labels(folder / "rt.dcm")


def rt_real_invalid_reference(c: Ctx) -> list[str]:
    assert c.shared is not None
    folder = c.tmp / "rt-utils"
    folder.mkdir()
    for name in ("ct_1.dcm", "ct_2.dcm", "invalid_reference_rt.dcm"):
        shutil.copy(c.shared / "rt-utils" / name, folder / name)
    return labels(folder / "invalid_reference_rt.dcm")


# ----------------------------------------------------------------------------------------------
# the corpus
# ----------------------------------------------------------------------------------------------
def _complex() -> np.ndarray:
    return _mask(np.complex64)


def _rgb_mask() -> np.ndarray:
    out = np.zeros(SHAPE, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    out["R"][1:4, 4:12, 3:11] = 1
    return out


SHEAR = np.array([[-0.8, 0.3, 0, 0], [0, -0.8, 0, 0], [0, 0, 2.5, 0], [0, 0, 0, 1.0]])
MICRON = _set("xyzt_units", (), 3)

CORPUS: list[tuple[str, Callable[[Ctx], list[str]], tuple[str, str | None], bool]] = [
    # id, builder, outcome, needs ../shared/data
    ("nifti-30000-cubed-in-1kB", nifti_huge, ("refused", "declares 30000x30000x30000 voxels"), False),
    ("nifti-gz-30000-cubed", nifti_huge_gz, ("refused", "inflated"), False),
    ("nifti-gz-truncated", nifti_truncated_gz, ("refused", "truncated or corrupt"), False),
    ("nifti-pixdim-zero", nifti_case("liver.nii", edit=_set("pixdim", 2, 0.0)), ("refused", "pixdim[2] = 0.0"), False),
    ("nifti-pixdim-nan", nifti_case("liver.nii", edit=_set("pixdim", 3, np.nan)), ("refused", "pixdim[3] = nan"),
     False),
    ("nifti-pixdim-inf-qform-only", nifti_case("liver.nii", codes=(0, 1), edit=_set("pixdim", 1, np.inf)),
     ("refused", "pixdim[1] = inf"), False),
    ("nifti-rgb-labels", nifti_case("liver.nii", _rgb_mask()), ("refused", "3 values per voxel"), False),
    ("nifti-complex-labels", nifti_case("liver.nii", _complex()), ("refused", "is complex"), False),
    ("nifti-float-fraction", nifti_case("liver.nii", _mask(np.float32, 0.5)), ("refused", "non-integer values"),
     False),
    ("nifti-float-whole-accepted", nifti_case("liver.nii.gz", _mask(np.float64)), ("accepted", None), False),
    ("nifti-time-series", nifti_case("liver.nii", np.stack([_mask()] * 2, axis=-1)), ("refused", "several volumes"),
     False),
    ("nifti-negative-labels", nifti_case("liver.nii", _mask(np.int16, -1)), ("refused", "negative values"), False),
    ("nifti-all-background", nifti_case("liver.nii", np.zeros(SHAPE, np.uint8)), ("refused", "no labelled voxels"),
     False),
    ("nifti-sheared-affine", nifti_case("liver.nii", affine=SHEAR), ("refused", "sheared affine"), False),
    ("nifti-sform-qform-disagree", nifti_case("liver.nii", qform=np.diag([-0.8, -0.8, 2.6, 1.0])),
     ("warned", "describe different grids (voxel size by 0.1 mm"), False),
    ("nifti-no-orientation", nifti_case("liver.nii", codes=(0, 0)), ("warned", "orientation unknown"), False),
    ("nifti-micrometre-units", nifti_case("liver.nii", edit=MICRON), ("warned", "micrometres"), False),
    ("nifti-scaled-labels", nifti_scaled_labels, ("refused", "intensity scaling"), False),
    ("nifti-text-named-nii-gz", nifti_text, ("refused", "liver.nii.gz: not a valid NIfTI file"), False),
    ("nifti-empty-file", nifti_empty_file, ("refused", "file is empty"), False),
    ("nifti-rgb-ct", nifti_rgb_ct, ("refused", "3 values per voxel"), False),
    ("msd8-float64-vessels-accepted", msd8_float_vessels, ("accepted", None), True),
    ("msd8-vessels-with-a-fraction", msd8_fractional_copy, ("refused", "non-integer values (dtype float64, e.g. 0.5)"),
     True),
    ("totalseg-pixdim-zeroed", totalseg_pixdim_copy, ("refused", "pixdim[1] = 0.0"), True),
    ("nrrd-sizes-exceed-raw", nrrd_case("liver.nrrd", ["type: uchar", *NRRD_GRID, "sizes: 160 160 50",
                                                       "encoding: raw"], _mask_bytes),
     ("refused", "declares sizes 160 x 160 x 50"), False),
    ("nrrd-sizes-exceed-gzip", nrrd_case("liver.nrrd", ["type: uchar", *NRRD_GRID, "sizes: 30000 30000 30000",
                                                        "encoding: gzip"], lambda: gzip.compress(_mask_bytes())),
     ("refused", "inflate to 1.28 kB"), False),
    ("nrrd-bzip2-bomb", nrrd_case("liver.nrrd", ["type: uchar", *NRRD_GRID, "sizes: 16 16 5", "encoding: bzip2"],
                                  lambda: bz2.compress(bytes(10**7))), ("refused", "inflate to more than 1.28 kB"),
     False),
    ("nrrd-rgb-labels", nrrd_case("liver.nrrd", ["type: uchar", "dimension: 4", "space: LPS", "sizes: 3 16 16 5",
                                                 "space directions: none (0.8,0,0) (0,0.8,0) (0,0,2.5)",
                                                 "kinds: RGB-color domain domain domain", "encoding: raw"],
                                  lambda: bytes(3 * 16 * 16 * 5)), ("refused", "3 components per voxel (a colour"),
     False),
    ("nrrd-scanner-space", nrrd_case("liver.nrrd", ["type: uchar", "dimension: 3", "space: scanner-xyz",
                                                    "space directions: (0.8,0,0) (0,0.8,0) (0,0,2.5)",
                                                    "sizes: 16 16 5", "encoding: raw"], _mask_bytes),
     ("refused", "cannot be placed in patient"), False),
    ("nrrd-float-fraction", nrrd_case("liver.nrrd", ["type: float", *NRRD_GRID, "sizes: 16 16 5", "encoding: raw"],
                                      lambda: _mask_bytes(np.float32, 0.5)), ("refused", "non-integer values"), False),
    ("nrrd-float-whole-accepted", nrrd_case("liver.nrrd", ["type: double", *NRRD_GRID, "sizes: 16 16 5",
                                                           "encoding: raw"], lambda: _mask_bytes(np.float64)),
     ("accepted", None), False),
    ("nrrd-zero-direction", nrrd_case("liver.nrrd", ["type: uchar", "dimension: 3", "space: LPS", "sizes: 16 16 5",
                                                     "space directions: (0.8,0,0) (0,0,0) (0,0,2.5)",
                                                     "encoding: raw"], _mask_bytes),
     ("refused", "the space direction of the y axis is zero-length"), False),
    ("segnrrd-float-type", nrrd_case("liver.seg.nrrd", ["type: float", *NRRD_GRID, "sizes: 16 16 5",
                                                        "encoding: raw", *SEG_HEADER],
                                     lambda: _mask_bytes(np.float32)), ("refused", "not an integer label type"), False),
    ("segnrrd-layer-out-of-range", nrrd_case("liver.seg.nrrd", ["type: uchar", *NRRD_GRID, "sizes: 16 16 5",
                                                                "encoding: raw", *SEG_HEADER[:2], "Segment0_Layer:=3"],
                                             _mask_bytes), ("refused", "is in layer 3, the file has 1"), False),
    ("segnrrd-empty-segment", nrrd_case("liver.seg.nrrd", ["type: uchar", *NRRD_GRID, "sizes: 16 16 5",
                                                           "encoding: gzip", *SEG_HEADER],
                                        lambda: gzip.compress(_mask_bytes())),
     ("warned", "segment 'tumor' (label 2, layer 0) has no voxels"), False),
    ("segnrrd-real-overlapping-accepted", slicer_real, ("accepted", None), True),
    ("segnrrd-real-truncated", slicer_truncated_copy, ("refused", "the file is truncated or its header is corrupt"),
     True),
    ("dicom-pixel-spacing-zero", dicom_edit(2, PixelSpacing=[0.8, 0]),
     ("refused", "CT00003.dcm: PixelSpacing [0.8, 0.0] must be > 0"), False),
    ("dicom-pixel-spacing-negative", dicom_edit(None, PixelSpacing=[-0.8, 0.8]), ("refused", "must be > 0 mm"), False),
    ("dicom-pixel-spacing-nan", dicom_edit(1, PixelSpacing=["nan", 0.8]),
     ("refused", "PixelSpacing needs 2 finite numbers"), False),
    ("dicom-slice-thickness-inf", dicom_edit(3, SliceThickness="inf"),
     ("refused", "SliceThickness 'inf' is not a finite number"), False),
    ("dicom-position-nan", dicom_edit(0, ImagePositionPatient=["nan", 0, 0]),
     ("refused", "ImagePositionPatient needs 3 finite numbers"), False),
    ("dicom-rescale-slope-zero", dicom_edit(4, RescaleSlope=0), ("refused", "RescaleSlope is 0"), False),
    ("dicom-rescale-intercept-nan", dicom_edit(4, RescaleIntercept="nan"),
     ("refused", "RescaleIntercept 'nan' is not a finite number"), False),
    ("dicom-rows-columns-exceed-pixels", dicom_edit(None, Rows=60000, Columns=60000),
     ("refused", "60000 x 60000 x 1 needs 7.2 GB"), False),
    ("dicom-number-of-frames", dicom_edit(2, NumberOfFrames=40), ("refused", "multi-frame image (40 frames)"), False),
    ("dicom-j2k-rows-lie", dicom_j2k_rows, ("refused", "compressed frame is 32 x 32 pixels"), False),
    ("dicom-pixel-data-truncated", dicom_truncated_pixels, ("refused", "CT00002.dcm: "), False),
    ("dicom-rgb-ct", dicom_rgb, ("refused", "only greyscale images are supported (SamplesPerPixel 3"), False),
    ("dicom-missing-slice", dicom_missing_slice, ("refused", "1 slice missing near z = 35 mm"), False),
    ("dicom-real-missing-slice", dicom_real_missing_slice, ("refused", "1 slice missing near z = 33.11 mm"), True),
    ("dicom-two-series", dicom_two_series, ("refused", "pick one with --series UID"), False),
    ("dicom-anonymised-uids", dicom_anonymised, ("warned", "no SeriesInstanceUID and StudyInstanceUID"), False),
    ("dicom-localizer", dicom_localizer, ("warned", "1 x localizer (ImageType LOCALIZER): scout.dcm"), False),
    ("dicom-pet-slice", dicom_other_modality,
     ("warned", "1 x Positron Emission Tomography Image Storage, Modality PT, not a CT image: pet.dcm"), False),
    ("dicom-secondary-capture-in-series", dicom_secondary_capture,
     ("warned", "Secondary Capture Image Storage, Modality CT, not a CT image: dose-screen.dcm"), False),
    ("dicom-dose-report", dicom_dose_report, ("warned", "1 x X-Ray Radiation Dose SR Storage: dose-report.dcm"),
     False),
    ("dicom-stray-and-broken-files", dicom_stray_files,
     ("warned", "2 file(s) skipped, not part of the series read: 1 x header without SOPClassUID or Rows (truncated?): "
                "broken.dcm; 1 x not DICOM: README.txt"), False),
    ("dicom-seg-accepted", seg_valid, ("accepted", None), False),
    ("dicom-seg-truncated", seg_truncated, ("refused", "seg.dcm: pixel data holds 56 bytes, Rows x Columns x "
                                                      "NumberOfFrames = 16 x 16 x 3 needs 96 bytes"), False),
    ("dicom-seg-other-frame-of-reference", seg_edit(FrameOfReferenceUID="1.2.3.4"),
     ("refused", "DICOM-SEG FrameOfReferenceUID 1.2.3.4 differs"), False),
    ("dicom-seg-not-a-segmentation-class", seg_edit(SOPClassUID=pydicom.uid.CTImageStorage),
     ("refused", "not a DICOM Segmentation"), False),
    ("dicom-seg-empty-segment", seg_empty_segment, ("warned", "segment 2 ('tumor') has no voxels"), False),
    ("dicom-seg-real-dcmqi-accepted", seg_real_dcmqi, ("accepted", None), True),
    ("rtstruct-accepted", rt_case(), ("accepted", None), False),
    ("rtstruct-contour-off-slice", rt_case(contour=[-6.0, 24.0, 36.0, -2.0, 24.0, 36.0, -2.0, 28.0, 36.0]),
     ("refused", "does not lie on a CT slice"), False),
    ("rtstruct-contour-data-not-triplets", rt_case(contour=[-6.0, 24.0, 35.0, -2.0]),
     ("refused", "ContourData needs finite x, y, z triplets"), False),
    ("rtstruct-other-series", rt_case(series_uid="1.2.3.4.5"), ("refused", "drawn on CT series 1.2.3.4.5"), False),
    ("rtstruct-no-roi-number", rt_case(roi_number=None), ("refused", "ROINumber"), False),
    ("rtstruct-truncated", rt_truncated, ("refused", "rt.dcm: "), False),
    ("rtstruct-real-rt-utils", rt_real, ("warned", "contours placed by patient coordinates"), True),
    ("rtstruct-real-invalid-reference", rt_real_invalid_reference,
     ("refused", "contours reference 3 image(s) of series 2.16.840.1.114362.1.11940992.23790159890.563423471.893.88 "
                 "that the CT does not hold"), True),
]


@pytest.mark.parametrize(("build", "outcome", "needs_shared"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_reader_corpus(request, tmp_path, capsys, base, build, outcome, needs_shared):
    shared = request.getfixturevalue("shared_data") if needs_shared else None
    args = build(Ctx(tmp_path, base, shared))
    kind, words = outcome
    if kind == "refused":
        err = run_cli_bad(args, capsys)
        assert words in err, err
        return
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    if kind == "warned":
        assert any(words in w for w in warnings), out
    else:
        assert kind == "accepted"


def test_the_corpus_covers_every_reader_and_outcome():
    ids = [c[0] for c in CORPUS]
    assert len(ids) == len(set(ids)) >= 35
    outcomes = {c[2][0] for c in CORPUS}
    assert outcomes == {"refused", "warned", "accepted"}
    for prefix in ("nifti", "nrrd", "segnrrd", "dicom-", "dicom-seg", "rtstruct"):
        assert any(i.startswith(prefix) for i in ids), prefix
