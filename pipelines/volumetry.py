"""Single-case volumetry workflow: read the inputs, measure, format."""

from __future__ import annotations

from pathlib import Path

from flr.anatomy import segment_short
from flr.volumes import VolumetryResult, volumetry
from pipelines.inputs import input_paths, load_case
from pipelines.outputs import Output, OutputSet


def run_volumetry(labels: list[str], *, ct: Path | None = None, series_uid: str | None = None,
                  resample: str | None = None, strict: bool = False, json_out: Path | None = None) -> VolumetryResult:
    """Read ``PATH[:SCHEME]`` label maps (and the CT) and measure them (``strict``: inconsistencies are errors).

    ``json_out`` (``--json``; ``-`` is standard output) is checked before the inputs are read and written
    atomically (:mod:`pipelines.outputs`).
    """
    outputs = OutputSet([Output("--json", json_out) if json_out is not None else None],
                        inputs=input_paths(labels, ct))
    with outputs.staged() as staged:
        ct_image, maps = load_case(labels, ct=ct, series_uid=series_uid, resample=resample)
        result = volumetry(maps, ct=ct_image, strict=strict)
        if json_out is not None:
            staged.write_json("--json", result.to_dict())
    return result


def format_table(result: VolumetryResult) -> str:
    """A readable terminal table of the structures, contacts and warnings."""
    rows: list[tuple[str, ...]] = [("structure", "label", "voxels", "volume_ml", "edge")]
    for name, s in result.structures.items():
        if len(s.derived_from) > 1:
            label = "union"
        else:
            label = "+".join(str(i) for i in s.labels) if len(s.labels) > 1 else str(s.label or "")
        edge = ("TRUNCATED? " + "/".join(s.truncated_sides)) if s.touches_border else ""
        rows.append((name, label, f"{s.voxels:,}", f"{s.volume_ml:,.2f}", edge))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    g = result.geometry
    lines.append(f"grid {g.shape_zyx[2]}x{g.shape_zyx[1]}x{g.shape_zyx[0]} (x,y,z) spacing "
                 + "x".join(f"{v:g}" for v in g.spacing_mm) + f" mm, voxel {result.voxel_volume_ml * 1000:g} mm^3")
    for k, r in enumerate(rows):
        cells = [r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].rjust(widths[2]), r[3].rjust(widths[3]),
                 r[4]]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("-" * (sum(widths) + 8))
    if result.segment_contacts:
        pairs = ", ".join(f"{segment_short(c.a)}-{segment_short(c.b)}" + ("" if c.textbook else "(!)")
                          for c in result.segment_contacts)
        lines.append(f"segment contacts: {pairs}")
    lines.extend(f"warning: {w}" for w in result.warnings)
    return "\n".join(lines)

