"""``OUT/summary.html`` of ``flr batch``: the dataset at a glance, one self-contained page (inline PNGs).

Cases done and failed, per-segment volume distributions (box plots), the FLR distribution of the plan, and with
a reference a Bland-Altman plot per structure and the metrics table. The page reuses the single-case report's
style sheet (:mod:`flr.report`), so both read alike.
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: Metric columns shown in the summary's table (means over the cases), in this order.
METRIC_COLUMNS = ("dice", "jaccard", "volume_diff_ml", "volume_diff_percent", "hd95_mm", "assd_mm", "surface_dice")

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>flr batch summary</title>{{ style | safe }}</head><body>
<h1>flr batch summary</h1>
<div class="src">flr {{ version }} · {{ total }} cases</div>
<p class="disclaimer"><b>Decision support, not a decision.</b> Check every measurement on the images.</p>
<h2>Cases</h2>
<table><tr><th>done</th><th>failed</th><th>with warnings</th><th>liver touching the scan edge</th></tr>
<tr><td class="num">{{ done }}</td><td class="num">{{ failed }}</td><td class="num">{{ warned }}</td>
<td class="num">{{ truncated }}</td></tr></table>
{% if errors %}<h3>Failed cases</h3><table><tr><th>case</th><th>input</th><th>error</th></tr>
{% for e in errors %}<tr><td>{{ e.case_id }}</td><td class="src">{{ e.input }}</td><td>{{ e.error }}</td></tr>
{% endfor %}</table>{% endif %}
{% if volumes %}<h2>Volumes</h2><table><tr><th>structure</th><th>cases</th><th>median mL</th><th>min mL</th>
<th>max mL</th></tr>{% for v in volumes %}<tr><td>{{ v.name }}</td><td class="num">{{ v.n }}</td>
<td class="num">{{ v.median }}</td><td class="num">{{ v.min }}</td><td class="num">{{ v.max }}</td></tr>
{% endfor %}</table>{% endif %}
<div class="figs">{% for f in figures %}<figure><img alt="{{ f.title }}" src="data:image/png;base64,{{ f.png }}">
<figcaption>{{ f.title }}</figcaption></figure>{% endfor %}</div>
{% if metrics %}<h2>Against the reference</h2><table><tr><th>structure</th><th>cases</th>
{% for c in metric_columns %}<th>{{ c }} (mean)</th>{% endfor %}</tr>
{% for m in metrics %}<tr><td>{{ m.structure }}</td><td class="num">{{ m.n }}</td>
{% for c in metric_columns %}<td class="num">{{ m[c] }}</td>{% endfor %}</tr>{% endfor %}</table>{% endif %}
</body></html>
"""


def _style() -> str:
    """The ``<style>`` block of the single-case report's template."""
    from importlib import resources

    text = resources.files("flr.report").joinpath("report.html.j2").read_text(encoding="utf-8")
    found = re.search(r"<style>.*?</style>", text, flags=re.S)
    return found.group(0) if found else ""


def _number(value: Any) -> float | None:
    """A finite float, or None (empty cells, infinities of empty masks)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width_in: float, height_in: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def volume_figure(rows: Sequence[Mapping[str, Any]]) -> dict[str, str] | None:
    """Box plots of the Couinaud segment volumes (mL) over the cases, or None without segments."""
    from flr.anatomy import roman_numeral

    columns = [f"liver_segment_{i}_ml" for i in range(1, 9)]
    data = [[v for r in rows if (v := _number(r.get(c))) is not None] for c in columns]
    if not any(data):
        return None
    fig = _figure(6.0, 3.2)
    ax = fig.add_subplot()
    kept = [(roman_numeral(c[:-3]), d) for c, d in zip(columns, data, strict=True) if d]
    ax.boxplot([d for _, d in kept], tick_labels=[n for n, _ in kept])
    ax.set_xlabel("Couinaud segment")
    ax.set_ylabel("volume (mL)")
    return {"title": "Segment volumes over the cases", "png": _png(fig)}


def flr_figure(rows: Sequence[Mapping[str, Any]]) -> dict[str, str] | None:
    """Histogram of the FLR (percent of the functional liver) and, where known, the sFLR, or None."""
    flr_values = [v for r in rows if (v := _number(r.get("flr_percent"))) is not None]
    if not flr_values:
        return None
    sflr_values = [v for r in rows if (v := _number(r.get("sflr_percent"))) is not None]
    fig = _figure(6.0, 3.2)
    ax = fig.add_subplot()
    ax.hist(flr_values, bins=min(20, max(5, len(flr_values))), alpha=0.7, label="FLR % of functional liver")
    if sflr_values:
        ax.hist(sflr_values, bins=min(20, max(5, len(sflr_values))), alpha=0.6, label="sFLR %")
    ax.axvline(30.0, color="#d62728", linestyle="--", linewidth=1, label="30 %")
    ax.set_xlabel("percent")
    ax.set_ylabel("cases")
    ax.legend(fontsize=8)
    plans = sorted({str(r.get("plan")) for r in rows if r.get("plan")})
    return {"title": f"FLR distribution ({', '.join(plans) or 'plan'})", "png": _png(fig)}


def bland_altman_figure(structure: str, metrics: Sequence[Mapping[str, Any]]) -> dict[str, str] | None:
    """Bland-Altman plot of a structure's volumes, flr's input vs the reference (mL), or None."""
    pairs = [(p, r) for m in metrics if m.get("structure") == structure
             and (p := _number(m.get("volume_pred_ml"))) is not None
             and (r := _number(m.get("volume_ref_ml"))) is not None]
    if not pairs:
        return None
    means = [(p + r) / 2 for p, r in pairs]
    diffs = [p - r for p, r in pairs]
    bias = sum(diffs) / len(diffs)
    sd = math.sqrt(sum((d - bias) ** 2 for d in diffs) / (len(diffs) - 1)) if len(diffs) > 1 else 0.0
    fig = _figure(4.6, 3.2)
    ax = fig.add_subplot()
    ax.scatter(means, diffs, s=14)
    ax.axhline(bias, color="#345", linewidth=1, label=f"bias {bias:.1f} mL")
    for k in (-1.96, 1.96):
        ax.axhline(bias + k * sd, color="#d62728", linestyle="--", linewidth=1)
    ax.set_xlabel("mean of the two volumes (mL)")
    ax.set_ylabel("batch - reference (mL)")
    ax.legend(fontsize=8)
    return {"title": f"Bland-Altman: {structure} (limits of agreement ±1.96 SD)", "png": _png(fig)}


def _volume_table(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    import statistics

    out = []
    for c in ("liver_ml", *(f"liver_segment_{i}_ml" for i in range(1, 9)), "tumor_ml", "remnant_ml"):
        values = [v for r in rows if (v := _number(r.get(c))) is not None]
        if values:
            out.append({"name": c[:-3], "n": len(values), "median": f"{statistics.median(values):,.1f}",
                        "min": f"{min(values):,.1f}", "max": f"{max(values):,.1f}"})
    return out


def _metric_table(metrics: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for structure in dict.fromkeys(str(m.get("structure")) for m in metrics):
        mine = [m for m in metrics if m.get("structure") == structure]
        row: dict[str, Any] = {"structure": structure, "n": len(mine)}
        for c in METRIC_COLUMNS:
            values = [v for m in mine if (v := _number(m.get(c))) is not None]
            row[c] = f"{sum(values) / len(values):.3f}" if values else "—"
        out.append(row)
    return out


def write_summary(path: Path, rows: Sequence[Mapping[str, Any]], errors: Sequence[Mapping[str, Any]],
                  metrics: Sequence[Mapping[str, Any]] | None, *, plan_columns: bool) -> Path:
    """Write the summary page (atomically) from the batch's result rows, error rows and metric rows."""
    import jinja2

    import flr
    from flr.io import write_text_atomic

    done = [r for r in rows if r.get("status") == "ok"]
    figures = [f for f in (volume_figure(done), flr_figure(done) if plan_columns else None) if f]
    if metrics:
        figures.extend(f for s in dict.fromkeys(str(m.get("structure")) for m in metrics)
                       if (f := bland_altman_figure(s, metrics)))
    html = jinja2.Environment(autoescape=True).from_string(_TEMPLATE).render(
        style=_style(), version=flr.__version__, total=len(rows), done=len(done), failed=len(errors),
        warned=sum(1 for r in done if r.get("warnings")), truncated=sum(1 for r in done if r.get("liver_truncated")),
        errors=errors, volumes=_volume_table(done), figures=figures, metrics=_metric_table(metrics or ()),
        metric_columns=METRIC_COLUMNS)
    return write_text_atomic(html, path)
