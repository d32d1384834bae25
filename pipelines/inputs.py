"""Reading a case's inputs the same way for every command: the CT, then every ``--labels`` onto its grid."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from flr.image import Image, LabelMap
from flr.io import open_image, read_label_maps
from flr.schemes import BUILTIN_SCHEMES, split_labels_argument

#: Suffixes after which a label map's sidecar scheme (``NAME.scheme.json``) is looked for, as the readers do.
_LABEL_SUFFIXES = (".nii.gz", ".nii", ".seg.nrrd", ".nrrd", ".nhdr")


def input_paths(labels: Sequence[str], *others: str | Path | None) -> list[str]:
    """Every path a command reads: the label maps of ``PATH[:SCHEME]`` arguments, their scheme files (given or
    sidecar ``NAME.scheme.json``), and ``others`` (the CT, a patient file, a rulebook file; ``None`` skipped).

    The output checks (:class:`pipelines.outputs.OutputSet`) refuse an output that is one of these.

    >>> input_paths(["seg.nii.gz:lits", "liver.nii.gz"], "ct", None)
    ['seg.nii.gz', 'liver.nii.gz', 'liver.scheme.json', 'ct']
    """
    out: list[str] = []
    for arg in labels:
        path, scheme = split_labels_argument(arg)
        out.append(path)
        if scheme is not None and scheme not in BUILTIN_SCHEMES and scheme != "totalseg":
            out.append(scheme)
        elif scheme is None:
            name = Path(path).name
            stem = next((name[: -len(x)] for x in _LABEL_SUFFIXES if name.lower().endswith(x)), None)
            if stem:
                out.append(str(Path(path).with_name(f"{stem}.scheme.json")))
    out.extend(str(p) for p in others if p is not None)
    return out


def load_case(labels: Sequence[str], *, ct: Path | None = None, series_uid: str | None = None,
              resample: str | None = None) -> tuple[Image | None, list[LabelMap]]:
    """The CT (or None) and the label maps of ``PATH[:SCHEME]`` arguments.

    The grid rule: the CT's grid wins when a CT is given, else the first label map's. A label map on
    another grid is an error (:class:`~flr.errors.GeometryMismatchError`, raised later by the measurement)
    unless ``resample="nearest"``: then it is resampled with nearest-neighbour interpolation and the
    result's warnings say so. ``resample`` also lets a tilted or irregular DICOM CT be resampled.

    The CT is opened lazily (:func:`flr.io.open_image`): its geometry and metadata (every header, and a DICOM
    series' pixel data checked without decoding) at once, its voxels only where an output reads them (the liver
    on soft tissue check, the report's slices: :meth:`flr.image.Image.region`), so a command holds at most the
    CT's box around the liver, never the whole CT; a consumer that needs the grid alone (``flr batch``'s metrics
    against a reference) decodes no voxel.
    """
    ct_image = open_image(ct, series_uid=series_uid, resample=resample is not None) if ct is not None else None
    maps: list[LabelMap] = []
    for arg in labels:
        path, scheme = split_labels_argument(arg)
        maps.extend(read_label_maps(path, scheme, reference=ct_image, series_uid=series_uid))
    if resample == "nearest" and maps:
        from flr.resample import resample_nearest

        reference = ct_image.geometry if ct_image is not None else maps[0].geometry
        maps = [m if reference.same_grid(m.geometry) else resample_nearest(m, reference) for m in maps]
    return ct_image, maps
