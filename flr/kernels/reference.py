"""Plain numpy (and scipy) versions of :mod:`flr.kernels`: obvious, slow, used to test the kernels.

>>> import numpy as np
>>> arr = np.zeros((1, 2, 3), np.uint8); arr[0, :, 1:] = 4
>>> label_stats_reference(arr).contact_faces(0, 4).tolist()
[2, 0, 0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from flr.errors import KernelInputError
from flr.kernels import LabelStats


def _checked(labels: np.ndarray) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 3 or arr.dtype.kind not in "iub":
        raise KernelInputError(f"need a 3-D integer array, got shape {arr.shape} dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise KernelInputError("labels must be >= 0")
    return arr


def label_stats_reference(labels: np.ndarray) -> LabelStats:
    """Counts, face contacts and boxes of every label (see :func:`flr.kernels.label_stats`)."""
    arr = _checked(labels)
    ids, counts = np.unique(arr, return_counts=True)
    index = np.searchsorted(ids, arr)
    n = ids.size
    faces = np.zeros((3, n, n), np.int64)
    # face axis 0 = x = array axis 2, 1 = y = array axis 1, 2 = z = array axis 0
    for face_axis, array_axis in ((0, 2), (1, 1), (2, 0)):
        a = np.delete(index, 0, axis=array_axis)
        b = np.delete(index, -1, axis=array_axis)
        differ = a != b
        np.add.at(faces[face_axis], (a[differ], b[differ]), 1)
        np.add.at(faces[face_axis], (b[differ], a[differ]), 1)
    boxes = np.zeros((n, 6), np.int64)
    for i, label in enumerate(ids):
        where = np.nonzero(arr == label)
        boxes[i, :3] = [w.min() for w in where]
        boxes[i, 3:] = [w.max() for w in where]
    return LabelStats(
        shape_zyx=(int(arr.shape[0]), int(arr.shape[1]), int(arr.shape[2])),
        labels=ids.astype(np.int64),
        counts=counts.astype(np.int64),
        face_counts=faces,
        bbox_zyx=boxes,
    )


def connected_components_reference(
    labels: np.ndarray, include: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """6-connected components of the union of the ``include`` labels, by :func:`scipy.ndimage.label`."""
    arr = _checked(labels)
    mask = arr != 0 if include is None else np.isin(arr, np.asarray(list(include), dtype=np.int64))
    components, n = ndimage.label(mask, structure=ndimage.generate_binary_structure(3, 1))
    sizes = np.bincount(components.reshape(-1), minlength=n + 1)[1:].astype(np.int64)
    return components.astype(np.int32), sizes
