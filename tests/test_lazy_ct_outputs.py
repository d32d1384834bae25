"""Outputs from a CT opened lazily (flr.io.open_image, issue 14 item 2) equal those from the full read: the
volumetry and assessment results (findings included), the report's images; and neither the assessment nor
the volumetry decodes the whole CT (only the liver's box), on the sample case and on an oblique anisotropic
phantom, with the CT as DICOM and as NIfTI."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import flr
from flr.assessment import assess
from flr.image import LabelMap, LazyImage
from flr.io import open_image, read_image, write_nifti
from flr.io.dicom import write_dicom_series
from flr.plan import resection_plan
from flr.volumes import volumetry
from pipelines.report import write_report

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data" / "phantom-001"
PLAN = resection_plan("right-hemihepatectomy")


def _timeless(html: str) -> str:
    """The report without the time it was written (``YYYY-MM-DD HH:MM UTC``, which it shows)."""
    out, n = re.subn(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", "TIME", html)
    assert n >= 1
    return out


@pytest.fixture(scope="module")
def sample_maps():
    return flr.load_all(SAMPLE / "labels.nii.gz") + flr.load_all(SAMPLE / "liver.nii.gz")


@pytest.fixture(scope="module")
def oblique_case(tmp_path_factory, phantom_0_oblique):
    """The oblique phantom's CT as DICOM and NIfTI, and its label maps."""
    root = tmp_path_factory.mktemp("oblique")
    ph = phantom_0_oblique
    write_dicom_series(ph.ct, root / "ct_dicom")
    write_nifti(ph.ct, root / "ct.nii.gz")
    return root, [ph.labels, ph.liver]


@pytest.mark.parametrize("name", ["ct_dicom", "ct.nii.gz"])
def test_sample_assessment_and_report_equal_the_full_read_without_decoding_the_ct(sample_maps, name, tmp_path):
    full = read_image(SAMPLE / name)
    lazy = open_image(SAMPLE / name)
    with_full = assess(sample_maps, PLAN, ct=full)
    with_lazy = assess(sample_maps, PLAN, ct=lazy)
    assert isinstance(lazy, LazyImage) and not lazy.decoded  # the soft-tissue check read the liver's box alone
    assert with_lazy.to_dict() == with_full.to_dict()
    # the two reports are written seconds apart: their "analysed" minute may differ, nothing else may
    a = _timeless(write_report(with_full, tmp_path / "full", ct=full)["report"].read_text())
    b = _timeless(write_report(with_lazy, tmp_path / "lazy", ct=lazy)["report"].read_text())
    assert a == b and "data:image/png;base64," in a  # the same slices, pixel for pixel
    assert not lazy.decoded  # the report drew from its display box alone


@pytest.mark.parametrize("name", ["ct_dicom", "ct.nii.gz"])
def test_oblique_volumetry_and_findings_equal_the_full_read(oblique_case, name):
    root, maps = oblique_case
    full, lazy = read_image(root / name), open_image(root / name)
    maps = [LabelMap(m.array, full.geometry, m.source, m.metadata, names=m.names, scheme=m.scheme) for m in maps]
    assert volumetry(maps, ct=lazy).to_dict() == volumetry(maps, ct=full).to_dict()
    liver = maps[1]
    shifted = LabelMap(np.roll(liver.array, 40, axis=0), liver.geometry, "shifted", names=liver.names)  # 54 %
    want, got = volumetry([shifted], ct=full), volumetry([shifted], ct=lazy)
    assert "liver_not_soft_tissue" in [f.code for f in want.findings]
    assert got.to_dict() == want.to_dict()  # the same share, to the digit, in the same message
    assert not lazy.decoded


def test_the_python_api_opens_a_ct_path_lazily_with_the_full_reads_results(sample_maps, monkeypatch):
    """flr.volumetry / flr.assess given a CT path open it (flr.open_image) and never decode it whole."""
    ct_path = SAMPLE / "ct.nii.gz"
    full = read_image(ct_path)
    want_v = flr.volumetry(sample_maps, ct=full).to_dict()
    want_a = flr.assess(sample_maps, ct=full, plan="right-hemihepatectomy").to_dict()
    opened: list[LazyImage] = []
    real_open = flr.io.open_image

    def spy(*args, **kwargs):
        image = real_open(*args, **kwargs)
        opened.append(image)
        return image

    monkeypatch.setattr(flr.io, "open_image", spy)
    got_v = flr.volumetry(sample_maps, ct=ct_path).to_dict()
    got_a = flr.assess(sample_maps, ct=ct_path, plan="right-hemihepatectomy").to_dict()
    assert len(opened) == 2 and all(isinstance(i, LazyImage) and not i.decoded for i in opened)
    assert got_v == want_v
    assert got_a == want_a
    assert isinstance(flr.open_image(ct_path), LazyImage)
    np.testing.assert_array_equal(flr.open_image(ct_path).array, full.array)
