"""The base of flr's typed results: frozen pydantic models with one ``to_dict()`` and one ``from_dict()``.

Every result flr hands to a user (volumetry, assessment, verdict, patient) is a frozen model: its fields
are typed, it cannot be changed after construction, ``to_dict()`` gives the JSON contract (plain
``dict``/``list``/``str``/``float``/``int``/``bool``/``None``) and ``from_dict()`` reads it back, checking
every field. JSON Schemas (draft 2020-12) are generated from the same types (:func:`json_schema`).

>>> class Volume(FrozenModel):
...     volume_ml: float
>>> v = Volume.from_dict({"volume_ml": 1.5})
>>> v.to_dict()
{'volume_ml': 1.5}
>>> Volume.from_dict({"volume_ml": "a lot"})
Traceback (most recent call last):
...
flr.errors.ResultFormatError: result: volume_ml: Input should be a valid number, unable to parse string as a number
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from flr.errors import ResultFormatError

#: The outcome of every check and rule: a missing input is ``not_assessed``, never a silent ``pass``.
Status = Literal["pass", "fail", "not_assessed"]
PASS: Status = "pass"  # noqa: S105 (a status, not a password)
FAIL: Status = "fail"
NOT_ASSESSED: Status = "not_assessed"
STATUSES: tuple[Status, ...] = (PASS, FAIL, NOT_ASSESSED)
#: A check's status: measured (pass, fail), not assessed, or ``inferred`` (biliary drainage from portal inflow
#: without a bile-duct mask: shown as such, never as a pass).
CheckStatus = Literal["pass", "fail", "not_assessed", "inferred"]
INFERRED: CheckStatus = "inferred"

#: The one disclaimer every output carries (report, JSON, terminal, rules listing).
DISCLAIMER = "flr supports the multidisciplinary team's decision; it does not replace it."

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_M = TypeVar("_M", bound="FrozenModel")


def validation_messages(exc: ValidationError, limit: int = 20) -> list[str]:
    """Every error of a pydantic validation as ``field.path: message`` (list indices as ``[i]``)."""
    out = []
    for err in exc.errors()[:limit]:
        path = ""
        for part in err["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        out.append(f"{path or '(top level)'}: {err['msg']}")
    if len(exc.errors()) > limit:
        out.append(f"... and {len(exc.errors()) - limit} more")
    return out


class FrozenModel(BaseModel):
    """Immutable, strictly keyed model; subclasses add fields (units in their names)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, ser_json_inf_nan="null")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready contract (tuples as lists, dates as ISO strings)."""
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def from_dict(cls: type[_M], data: Mapping[str, Any], *, source: str = "result") -> _M:
        """Read :meth:`to_dict` output back; every bad field is named in one :class:`ResultFormatError`."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ResultFormatError(f"{source}: " + "; ".join(validation_messages(exc))) from None


def json_schema(model: type[BaseModel], *, title: str, schema_id: str | None = None) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of what ``model.to_dict()`` writes."""
    schema = model.model_json_schema(mode="serialization", by_alias=True)
    out: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT}
    if schema_id:
        out["$id"] = schema_id
    out.update(schema)
    out["title"] = title
    return out
