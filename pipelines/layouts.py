"""Dataset layouts of ``flr batch``: a folder (or a manifest CSV) in, one :class:`CaseSpec` per case out.

A case is described exactly as the command line would run it: ``--labels PATH[:SCHEME]`` arguments, a CT, and
for a manifest a plan, a patient file and the body size. ``flr volumetry --labels ... --ct ...`` with the same
strings gives the same result as the batch (the paths as given are what the result records).

Case ids are file or folder stems (never a DICOM PatientName or PatientID), made safe for a file name.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from flr.errors import InputFileError, SchemeError, one_line
from flr.schemes import split_labels_argument
from pipelines.inputs import input_paths

#: The layouts ``--layout`` accepts.
LAYOUTS = ("couinaud", "lits", "msd", "ircadb", "totalseg", "manifest")

#: Built-in schemes used for the layouts' files (see ``flr schemes``).
COUINAUD_SEGMENTS_SCHEME = "totalseg-liver-segments"  # 1-8: liver_segment_1 ... liver_segment_8
LIVER_MASK_SCHEME = "lits"  # 1 liver (a binary outline has no 2)
VESSEL_MASK_SCHEME = "msd-hepaticvessel"  # 1 hepatic_vessel (a mixed portal + hepatic venous mask)

_NIFTI_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
_SAFE_ID = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class CaseSpec:
    """One case of a dataset, as the command line would run it.

    ``labels`` are ``--labels`` arguments (``PATH[:SCHEME]``); ``error`` is set when the layout already knows
    the case cannot run (a manifest row without labels): the case becomes an error row without being read.
    """

    case_id: str
    labels: tuple[str, ...]
    ct: str | None = None
    plan: str | None = None
    patient: str | None = None
    weight_kg: float | None = None
    height_cm: float | None = None
    error: str | None = None
    error_input: str = ""

    def files(self) -> list[str]:
        """Every file or folder the case reads (label maps, their scheme files, CT, patient file)."""
        return input_paths(self.labels, self.ct, self.patient)

    def label_paths(self) -> list[str]:
        """The label maps' paths, without their schemes."""
        return [split_labels_argument(a)[0] for a in self.labels]


def safe_case_id(text: str) -> str:
    """A case id usable as a file name: runs of other characters become ``_``.

    >>> safe_case_id("3Dircadb1.1"), safe_case_id("a/b c")
    ('3Dircadb1.1', 'a_b_c')
    """
    out = _SAFE_ID.sub("_", text.strip()).strip("._") or "case"
    return out[:120]


def image_stem(path: Path) -> str:
    """A file name without its image suffix (``MSD-011.nii.gz`` -> ``MSD-011``)."""
    name = path.name
    low = name.lower()
    return next((name[: -len(s)] for s in _NIFTI_SUFFIXES if low.endswith(s)), path.stem)


def _images(folder: Path) -> list[Path]:
    """Image files of a folder, sorted, hidden files (macOS ``._`` copies) left out."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.name.lower().endswith(_NIFTI_SUFFIXES))


def _need_folder(path: Path, what: str) -> None:
    if not path.is_dir():
        problem = "does not exist" if not path.exists() else "is not a folder"
        raise InputFileError(f"{path}: {problem}; {what}")


def _same_name(folder: Path, stem: str) -> Path | None:
    """The image in ``folder`` with this stem, if any."""
    if not folder.is_dir():
        return None
    return next((p for p in _images(folder) if image_stem(p) == stem), None)


def couinaud_cases(dataset: Path) -> list[CaseSpec]:
    """``label/`` (Couinaud segments 1-8), optional ``liver/`` (outline) and ``vessel/`` (mixed vessel mask),
    optional ``image/`` or ``ct/`` (the CT), the same file name per case; the case id is the file stem."""
    _need_folder(dataset / "label", "the couinaud layout needs label/ (Couinaud segments 1-8 per case)")
    cases = []
    for seg in _images(dataset / "label"):
        stem = image_stem(seg)
        labels = [f"{seg}:{COUINAUD_SEGMENTS_SCHEME}"]
        for folder, scheme in (("liver", LIVER_MASK_SCHEME), ("vessel", VESSEL_MASK_SCHEME)):
            other = _same_name(dataset / folder, stem)
            if other is not None:
                labels.append(f"{other}:{scheme}")
        ct = _same_name(dataset / "image", stem) or _same_name(dataset / "ct", stem)
        cases.append(CaseSpec(safe_case_id(stem), tuple(labels), ct=str(ct) if ct else None))
    return cases


def lits_cases(dataset: Path) -> list[CaseSpec]:
    """LiTS: ``segmentation-N.nii`` (1 liver, 2 tumour) with ``volume-N.nii`` anywhere under the dataset
    (the challenge ships them in batch folders); the case id is the segmentation's stem."""
    _need_folder(dataset, "the lits layout needs the folder holding segmentation-N.nii files")
    volumes = {image_stem(p).replace("volume-", "", 1): p for p in dataset.rglob("volume-*")
               if p.is_file() and not p.name.startswith(".")}
    cases = []
    for seg in sorted(dataset.rglob("segmentation-*"), key=lambda p: _natural(image_stem(p))):
        if not seg.is_file() or seg.name.startswith(".") or not seg.name.lower().endswith(_NIFTI_SUFFIXES):
            continue
        number = image_stem(seg).replace("segmentation-", "", 1)
        ct = volumes.get(number)
        cases.append(CaseSpec(safe_case_id(image_stem(seg)), (f"{seg}:lits",), ct=str(ct) if ct else None))
    return cases


def _natural(text: str) -> tuple[object, ...]:
    """Sort key putting ``case-2`` before ``case-10``."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


def msd_scheme(dataset_json: Path) -> str:
    """The built-in scheme of an MSD task from its ``dataset.json`` labels: Task03 (liver, cancer) ->
    ``msd-liver``, Task08 (vessel, tumour) -> ``msd-hepaticvessel``."""
    try:
        data = json.loads(dataset_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{dataset_json}: not a readable dataset.json ({one_line(exc, 160)})") from None
    labels = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(labels, dict):
        raise InputFileError(f"{dataset_json}: no labels object")
    # MSD v1 writes {"1": "liver"}, nnU-Net v2 {"liver": 1}: the names are whichever side is not a number
    names = " ".join(str(v if str(k).isdigit() else k).lower() for k, v in labels.items())
    if "vessel" in names:
        return "msd-hepaticvessel"
    if "liver" in names:
        return "msd-liver"
    raise SchemeError(f"{dataset_json}: labels {names!r} are neither Task03 (liver) nor Task08 (vessel); "
                      "use --layout manifest with a scheme per file")


def msd_cases(dataset: Path) -> list[CaseSpec]:
    """Medical Segmentation Decathlon: ``labelsTr/NAME.nii.gz`` with ``imagesTr/NAME.nii.gz`` (or nnU-Net's
    ``NAME_0000.nii.gz``), the scheme from ``dataset.json``; the case id is the file stem."""
    _need_folder(dataset / "labelsTr", "the msd layout needs imagesTr/, labelsTr/ and dataset.json")
    scheme = msd_scheme(dataset / "dataset.json")
    cases = []
    for seg in _images(dataset / "labelsTr"):
        stem = image_stem(seg)
        ct = _same_name(dataset / "imagesTr", stem) or _same_name(dataset / "imagesTr", f"{stem}_0000")
        cases.append(CaseSpec(safe_case_id(stem), (f"{seg}:{scheme}",), ct=str(ct) if ct else None))
    return cases


#: 3D-IRCADb-01 mask folder names (lower case, digits removed) -> flr structure names.
IRCADB_STRUCTURES = {
    "liver": "liver",
    "portalvein": "portal_vein",
    "venacava": "inferior_vena_cava",
    "venoussystem": "hepatic_vein",
    "artery": "hepatic_artery",
    "livertumor": "tumor",
    "livertumors": "tumor",
    "livercyst": None,
}


def ircadb_structure(folder_name: str) -> str | None:
    """The flr structure of a 3D-IRCADb mask folder (``livertumor01`` -> ``tumor``), or None when flr has none.

    >>> ircadb_structure("livertumor03"), ircadb_structure("portalvein"), ircadb_structure("leftlung")
    ('tumor', 'portal_vein', None)
    """
    key = re.sub(r"[\d_\s]+", "", folder_name.lower())
    return IRCADB_STRUCTURES.get(key)


def ircadb_cases(dataset: Path, scheme_dir: Path) -> list[CaseSpec]:
    """3D-IRCADb-01: ``<case>/MASKS_DICOM/<structure>/`` DICOM masks (0/255) and ``<case>/PATIENT_DICOM/`` (the
    CT); one scheme file per structure is written into ``scheme_dir`` ({"255": name}). The case id is the case
    folder's name (``3Dircadb1.1``), never the DICOM patient fields."""
    _need_folder(dataset, "the ircadb layout needs the folder holding the 3Dircadb1.N case folders")
    cases = []
    for folder in sorted((p for p in dataset.iterdir() if (p / "MASKS_DICOM").is_dir()),
                         key=lambda p: _natural(p.name)):
        labels = []
        for mask in sorted(p for p in (folder / "MASKS_DICOM").iterdir() if p.is_dir()):
            name = ircadb_structure(mask.name)
            if name is not None:
                labels.append(f"{mask}:{_ircadb_scheme(scheme_dir, name)}")
        ct = folder / "PATIENT_DICOM"
        error = None if labels else f"{folder / 'MASKS_DICOM'}: no mask folder flr uses (liver, portalvein, ...)"
        cases.append(CaseSpec(safe_case_id(folder.name), tuple(labels), ct=str(ct) if ct.is_dir() else None,
                              error=error, error_input=str(folder / "MASKS_DICOM") if error else ""))
    return cases


def _ircadb_scheme(scheme_dir: Path, name: str) -> Path:
    """A scheme file naming IRCADb's mask value 255 (and 1, which some conversions write) as ``name``."""
    from flr.io import write_json_atomic

    path = scheme_dir / f"ircadb-{name}.json"
    wanted = {"1": name, "255": name}
    if not path.is_file() or json.loads(path.read_text(encoding="utf-8")) != wanted:
        scheme_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(wanted, path)
    return path


_TS_CT_NAMES = ("ct.nii.gz", "ct.nii", "image.nii.gz", "image.nii", "ct")
#: Multilabel outputs (TotalSegmentator ``--ml``), by the task their file name starts with, and their scheme.
_TS_MULTILABEL = (("liver_segments", "totalseg-liver-segments"), ("liver_vessels", "totalseg-liver-vessels"),
                  ("total", "totalseg-total"))


def _ts_multilabel(path: Path) -> str | None:
    """The scheme of a TotalSegmentator multilabel file (``total.nii.gz``, ``liver_vessels_ml.nii.gz`` ...)."""
    return next((scheme for task, scheme in _TS_MULTILABEL if path.name.startswith(task)), None)


def totalseg_cases(dataset: Path) -> list[CaseSpec]:
    """A folder per case holding TotalSegmentator's outputs of the ``total``, ``liver_segments`` and
    ``liver_vessels`` tasks: per-class files, flat or in one subfolder per task, and/or multilabel files
    (``--ml``) named after their task (``total*.nii.gz``, ``liver_segments*.nii.gz``, ``liver_vessels*.nii.gz``;
    TotalSegmentator v2 label ids), with or without the CT (``ct.nii.gz``, ``image.nii.gz`` or a DICOM folder
    ``ct/``); the case id is the case folder's name."""
    _need_folder(dataset, "the totalseg layout needs a folder per case of TotalSegmentator outputs")
    cases = []
    for folder in sorted((p for p in dataset.iterdir() if p.is_dir() and not p.name.startswith(".")),
                         key=lambda p: _natural(p.name)):
        ct = next((folder / n for n in _TS_CT_NAMES if (folder / n).exists()), None)
        files = sorted(p for p in folder.glob("*.nii.gz") if p != ct)
        multilabel = [f"{p}:{scheme}" for p in files if (scheme := _ts_multilabel(p))]
        holders = [folder] if any(_ts_multilabel(p) is None for p in files) else []
        holders += sorted(p for p in folder.iterdir() if p.is_dir() and p != ct and any(p.glob("*.nii.gz")))
        labels = (*(f"{h}:totalseg" for h in holders), *multilabel)
        error = None if labels else f"{folder}: no TotalSegmentator .nii.gz files"
        cases.append(CaseSpec(safe_case_id(folder.name), labels, ct=str(ct) if ct else None, error=error,
                              error_input=str(folder) if error else ""))
    return cases


MANIFEST_COLUMNS = ("case_id", "ct", "labels", "plan", "patient", "weight_kg", "height_cm")


def manifest_cases(manifest: Path) -> list[CaseSpec]:
    """A CSV with ``case_id``, ``ct``, ``labels`` (``;``-separated ``PATH[:SCHEME]``) and optional ``plan``,
    ``patient``, ``weight_kg``, ``height_cm``; relative paths are relative to the manifest's folder."""
    if not manifest.is_file():
        raise InputFileError(f"{manifest}: no such file; the manifest layout needs a CSV file")
    try:
        with manifest.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
            header = [c.strip() for c in (rows[0].keys() if rows else [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFileError(f"{manifest}: not a readable CSV ({one_line(exc, 160)})") from None
    missing = [c for c in ("case_id", "labels") if c not in header]
    if missing:
        raise InputFileError(f"{manifest}: missing column(s) {', '.join(missing)}; the manifest needs "
                             f"{', '.join(MANIFEST_COLUMNS)} (ct, plan, patient, weight_kg, height_cm optional)")
    return [_manifest_row(manifest, k + 2, {k.strip(): (v or "").strip() for k, v in row.items() if k})
            for k, row in enumerate(rows)]


def _manifest_row(manifest: Path, line: int, row: dict[str, str]) -> CaseSpec:
    """One manifest row as a case (a row that cannot run carries its error)."""
    base = manifest.parent

    def here(path: str) -> str:
        return path if Path(path).is_absolute() else str(base / path)

    labels = []
    for arg in (a.strip() for a in row.get("labels", "").split(";")):
        if arg:
            path, scheme = split_labels_argument(arg)
            scheme_part = ""
            if scheme is not None:
                scheme_part = ":" + (here(scheme) if Path(scheme).suffix.lower() in (".json", ".yaml", ".yml")
                                     else scheme)
            labels.append(here(path) + scheme_part)
    spec = CaseSpec(safe_case_id(row.get("case_id") or f"row-{line}"), tuple(labels),
                    ct=here(row["ct"]) if row.get("ct") else None, plan=row.get("plan") or None,
                    patient=here(row["patient"]) if row.get("patient") else None)
    try:
        spec = replace(spec, weight_kg=_number(row, "weight_kg"), height_cm=_number(row, "height_cm"))
    except ValueError as exc:
        return replace(spec, error=f"{manifest} line {line}: {exc}", error_input=str(manifest))
    if not labels:
        return replace(spec, error=f"{manifest} line {line}: no labels", error_input=str(manifest))
    return spec


def _number(row: dict[str, str], column: str) -> float | None:
    text = row.get(column, "")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{column} {text!r} is not a number") from None


def discover(dataset: Path, layout: str, *, scheme_dir: Path) -> list[CaseSpec]:
    """The cases of ``dataset`` in ``layout`` (``scheme_dir``: where generated scheme files go, for ircadb).

    Raises
    ------
    InputFileError
        The dataset is not in that layout, or two cases would get the same id.
    """
    readers: dict[str, Callable[[Path], list[CaseSpec]]] = {
        "couinaud": couinaud_cases, "lits": lits_cases, "msd": msd_cases, "totalseg": totalseg_cases,
        "manifest": manifest_cases, "ircadb": lambda d: ircadb_cases(d, scheme_dir)}
    if layout not in readers:
        raise InputFileError(f"unknown layout {layout!r}; one of {', '.join(LAYOUTS)}")
    cases = readers[layout](dataset)
    seen: set[str] = set()
    for c in cases:
        if c.case_id in seen:
            raise InputFileError(f"{dataset}: two cases have the id {c.case_id!r}; case ids must be unique")
        seen.add(c.case_id)
    return cases
