"""The published JSON Schemas (draft 2020-12) of flr's documents, generated from the typed models.

``flr schema volumetry|assessment|patient|rulebook`` prints them.

>>> s = json_schema_of("assessment")
>>> s["$schema"], s["properties"]["kind"]["const"]
('https://json-schema.org/draft/2020-12/schema', 'assessment')
"""

from __future__ import annotations

from typing import Any, Literal

Document = Literal["volumetry", "assessment", "patient", "rulebook"]
DOCUMENTS: tuple[Document, ...] = ("volumetry", "assessment", "patient", "rulebook")
_BASE_ID = "https://github.com/flr-liver/flr/schemas"


def json_schema_of(document: Document) -> dict[str, Any]:
    """The JSON Schema of one document kind (``ValueError`` for another name)."""
    from flr.model import json_schema

    if document == "volumetry":
        from flr.results import VOLUMETRY_SCHEMA_VERSION, VolumetryResult

        return json_schema(VolumetryResult, title=f"flr volumetry result {VOLUMETRY_SCHEMA_VERSION}",
                           schema_id=f"{_BASE_ID}/volumetry-{VOLUMETRY_SCHEMA_VERSION}.json")
    if document == "assessment":
        from flr.results import ASSESSMENT_SCHEMA_VERSION, Assessment

        return json_schema(Assessment, title=f"flr assessment result {ASSESSMENT_SCHEMA_VERSION}",
                           schema_id=f"{_BASE_ID}/assessment-{ASSESSMENT_SCHEMA_VERSION}.json")
    if document == "patient":
        from flr.patient import patient_json_schema

        return patient_json_schema()
    if document == "rulebook":
        from flr.rules import rulebook_json_schema

        return rulebook_json_schema()
    raise ValueError(f"unknown document {document!r}; one of {', '.join(DOCUMENTS)}")
