"""Time a whole ``flr.assess`` on a 512 x 512 x 400 phantom against the same steps done with scipy/SimpleITK.

Run from the repository root::

    python benchmarks/bench_assess.py [--repeat 3]

The case is flr's liver phantom (segments, tumours, portal and hepatic veins, IVC, liver outline)
rasterised on a 512 x 512 x 400 grid (0.7 x 0.7 x 0.8 mm). The plan is a right hemihepatectomy with a
wedge of the largest tumour left in the remnant (if any). Both sides do the same steps on the same
arrays:

* flr: ``flr.assessment.assess`` (one-pass numba counts/adjacency, run-length components, EDTs cropped to the
  region of interest);
* baseline: what a researcher would write with the usual libraries: ``np.bincount`` counts, SimpleITK
  ``LabelShapeStatisticsImageFilter`` for bounding boxes, adjacency by shifted-array comparisons,
  whole-volume ``scipy.ndimage.distance_transform_edt`` for segment territories, the wedge and the
  margins, ``scipy.ndimage.label`` for vessel trees and remnant islands.

The baseline reproduces the numbers (remnant volume within one voxel's volume per step), not the
report. Results are printed and written to ``benchmarks/results/assess-<date>.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHAPE = (400, 512, 512)
SPACING = (0.7, 0.7, 0.8)


def baseline(labels: np.ndarray, outline: np.ndarray, spacing_zyx: tuple[float, float, float],
             resected: tuple[int, ...], wedge_tumour_mask: np.ndarray | None, margin_mm: float) -> dict[str, float]:
    """The assessment's volume steps with numpy / scipy / SimpleITK on whole volumes."""
    import SimpleITK as sitk
    from scipy import ndimage

    vv = float(np.prod(spacing_zyx)) / 1000.0
    counts = np.bincount(labels.ravel(), minlength=13)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.ComputePerimeterOff()
    stats.Execute(sitk.GetImageFromArray(labels))
    pairs = set()
    for axis in range(3):
        a = np.moveaxis(labels, axis, 0)
        diff = a[1:] != a[:-1]
        both = np.stack([a[1:][diff], a[:-1][diff]], axis=1)
        pairs |= {tuple(p) for p in np.unique(both, axis=0).tolist()}
    segs = (labels >= 1) & (labels <= 8)
    liver = outline.astype(bool) | segs | (labels == 9)
    # territories: nearest segment for every liver voxel, whole-volume EDT
    _, idx = ndimage.distance_transform_edt(~segs, sampling=spacing_zyx, return_indices=True)
    territory = np.where(liver, labels[idx[0], idx[1], idx[2]], 0)
    del idx
    resected_mask = np.isin(territory, resected)
    if wedge_tumour_mask is not None:
        resected_mask |= (ndimage.distance_transform_edt(~wedge_tumour_mask, sampling=spacing_zyx) <= margin_mm) & liver
    remnant = liver & ~resected_mask
    # vessel trees cut by the resection, kept where connected to the extrahepatic trunk
    for vessel in (10, 11):
        kept = (labels == vessel) & ~(resected_mask & liver)
        comp, _ = ndimage.label(kept)
        trunk_ids = np.unique(comp[(labels == vessel) & ~liver])
        _ = np.isin(comp, trunk_ids[trunk_ids > 0])
    # margins of resected tumours: whole-volume EDT to the remnant
    dist = ndimage.distance_transform_edt(~(remnant & (labels != 9)), sampling=spacing_zyx)
    tumours, n = ndimage.label(labels == 9)
    margins = ndimage.minimum(dist, tumours, index=np.arange(1, n + 1))
    comp, n_islands = ndimage.label(remnant)
    return {"remnant_ml": float(np.count_nonzero(remnant)) * vv, "tumours": float(n),
            "pairs": float(len(pairs)), "margins": float(np.size(margins)), "components": float(n_islands),
            "counts": float(counts.sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from flr.assessment import assess
    from flr.phantom import make_liver_phantom
    from flr.plan import resection_plan

    t0 = time.perf_counter()
    ph = make_liver_phantom(1, spacing_mm=(SPACING[0], SPACING[1], SPACING[2]), shape_zyx=SHAPE)
    build_s = time.perf_counter() - t0
    labels, outline = ph.labels, ph.liver
    plan = resection_plan("right-hemihepatectomy")
    warm = assess([labels, outline], plan)  # compiles/loads numba kernels
    left = [t.id for t in warm.tumors if t.fate == "left"]
    if left:
        plan = resection_plan("right-hemihepatectomy", wedges=[f"{left[0]}:10"])

    flr_times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = assess([labels, outline], plan)
        flr_times.append(time.perf_counter() - t0)

    from flr.kernels import components_of_mask  # same tumour numbering as flr for the baseline wedge
    comp, sizes = components_of_mask(labels.array == 9)
    wedge_mask = None
    if left:
        order = np.argsort(-sizes, kind="stable")
        wedge_mask = comp == int(order[left[0] - 1]) + 1
    sx, sy, sz = SPACING
    base_times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        base = baseline(labels.array, outline.array, (sz, sy, sx), (5, 6, 7, 8), wedge_mask, 10.0)
        base_times.append(time.perf_counter() - t0)

    f, b = min(flr_times), min(base_times)
    lines = [
        f"# flr assess benchmark, {dt.date.today().isoformat()}",
        "",
        f"- machine: {platform.machine()}, python {platform.python_version()}, numpy {np.__version__}",
        f"- case: liver phantom seed 1 on {SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]} (x,y,z), spacing {SPACING} mm "
        f"(built in {build_s:.1f} s); plan: {plan.name}",
        f"- best of {args.repeat} runs, numba kernels already loaded",
        "",
        "| run | s | ratio |",
        "|---|---:|---:|",
        f"| flr.assess (everything: volumetry, territories, zones, vessels, margins, contiguity) | {f:.2f} | 1.0x |",
        f"| same volume steps with numpy/scipy/SimpleITK on whole volumes | {b:.2f} | {b / f:.1f}x |",
        "",
        f"remnant volume: flr {result.remnant.volume_ml:.2f} mL, baseline {base['remnant_ml']:.2f} mL",
    ]
    text = "\n".join(lines)
    print(text)
    out = REPO / "benchmarks" / "results" / f"assess-{dt.date.today().isoformat()}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
