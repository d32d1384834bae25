"""flr: CT liver volumetry and future-liver-remnant analysis.

The functions a notebook needs are one import away (heavy modules load on first use):

>>> import flr
>>> flr.Geometry((10, 10, 10), (0.5, 0.5, 4.0)).voxel_volume_ml
0.001
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from flr.errors import (
    EmptyStructureError,
    FlrError,
    GeometryMismatchError,
    InputFileError,
    SchemeError,
)
from flr.image import Geometry, Image, LabelMap, mm3_to_ml

if TYPE_CHECKING:
    from flr.volumes import VolumetryResult

__all__ = [
    "EmptyStructureError",
    "FlrError",
    "Geometry",
    "GeometryMismatchError",
    "Image",
    "InputFileError",
    "LabelMap",
    "SchemeError",
    "__version__",
    "load",
    "load_image",
    "mm3_to_ml",
    "volumetry",
]


def load(path: Any, scheme: Any = None, **kwargs: Any) -> LabelMap:
    """Read a label map (NIfTI, NRRD, ...) and name its labels (``scheme``: built-in name, file, dict)."""
    from flr.io import read_label_map

    return read_label_map(path, scheme, **kwargs)


def load_image(path: Any, **kwargs: Any) -> Image:
    """Read a CT from NIfTI, NRRD, a DICOM file or a DICOM folder (see :func:`flr.io.read_image`)."""
    from flr.io import read_image

    return read_image(path, **kwargs)


def volumetry(labels: Any, ct: Any = None, **kwargs: Any) -> VolumetryResult:
    """Volumetry of one label map or several; paths are read first (``(path, scheme)`` pairs allowed).

    >>> import numpy as np, flr
    >>> arr = np.zeros((4, 5, 6), np.uint8); arr[1:3, 1:4, 1:5] = 1
    >>> lm = flr.LabelMap(arr, flr.Geometry(arr.shape, (2.0, 2.0, 5.0)), names={1: "liver"})
    >>> flr.volumetry(lm).volumes_ml["liver"]    # 24 voxels x 20 mm^3
    0.48
    """
    from flr.volumes import volumetry as _volumetry

    items = labels if isinstance(labels, (list, tuple)) and not _is_pair(labels) else [labels]
    maps = [_as_label_map(x) for x in items]
    ct_image = load_image(ct) if ct is not None and not isinstance(ct, Image) else ct
    return _volumetry(maps, ct=ct_image, **kwargs)


def _is_pair(x: Any) -> bool:
    return isinstance(x, tuple) and len(x) == 2 and not isinstance(x[0], (LabelMap, tuple, list))


def _as_label_map(x: Any) -> LabelMap:
    if isinstance(x, LabelMap):
        return x
    if isinstance(x, tuple):
        return load(x[0], x[1])
    return load(x)
