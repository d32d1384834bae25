"""NRRD (.nrrd, .nhdr) through SimpleITK, which returns LPS geometry and (z, y, x) arrays.

A single-layer 3D Slicer segmentation (``.seg.nrrd``) also carries segment names and label values in
its header; :func:`slicer_segment_names` reads them so a scheme is not needed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flr.errors import InputFileError
from flr.image import Geometry, Image


def _read_sitk(path: Path) -> Any:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        image = reader.Execute()
    except RuntimeError as exc:
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        raise InputFileError(f"{path}: not a readable NRRD file ({lines[-1].strip() if lines else 'ITK error'})"
                             ) from None
    return image, {k: reader.GetMetaData(k) for k in reader.GetMetaDataKeys()}


def read_nrrd(path: Path) -> Image:
    """Read a NRRD file as an :class:`~flr.image.Image` (LPS, arrays (z, y, x))."""
    import SimpleITK as sitk

    path = Path(path)
    image, header = _read_sitk(path)
    if image.GetDimension() != 3:
        raise InputFileError(f"{path}: expected a 3-D image, got {image.GetDimension()}-D")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputFileError(f"{path}: {image.GetNumberOfComponentsPerPixel()} components per voxel "
                             "(a layered segmentation); flr reads single-layer files here")
    array = sitk.GetArrayFromImage(image)
    geometry = Geometry(array.shape, image.GetSpacing(), image.GetOrigin(), image.GetDirection())
    meta: dict[str, Any] = {"format": "nrrd", "warnings": [],
                            "segments": slicer_segment_names(header)}
    return Image(array, geometry, source=str(path), metadata=meta)


def slicer_segment_names(header: dict[str, str]) -> dict[int, str]:
    """``{label value: segment name}`` from a 3D Slicer ``.seg.nrrd`` header (empty if not one)."""
    names: dict[int, str] = {}
    pattern = re.compile(r"^Segment(\d+)_Name$")
    for key, value in header.items():
        m = pattern.match(key)
        if not m:
            continue
        label = header.get(f"Segment{m.group(1)}_LabelValue")
        if label is not None and label.strip().lstrip("-").isdigit():
            names[int(label)] = value
    return names
