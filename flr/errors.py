"""flr's exception hierarchy.

Every error a user can cause is an :class:`FlrError`; each subclass also derives from the standard
exception it refines, so callers can catch precisely (``except GeometryMismatchError``) or broadly
(``except ValueError``). Messages name the file, the offending values and, where there is one, a fix.
The command line prints them as one line and exits non-zero; the library never prints or exits.
"""

from __future__ import annotations

import re

#: Longest quoted value in a message; the whole line is capped at :data:`MAX_MESSAGE_CHARS`.
MAX_VALUE_CHARS = 80
MAX_MESSAGE_CHARS = 600


def quote(value: object, limit: int = MAX_VALUE_CHARS) -> str:
    """``repr`` of a value for a message: one line, at most ``limit`` characters (``...`` marks a cut).

    >>> quote("x" * 200)[:12], len(quote("x" * 200))
    ("'xxxxxxxxxxx", 80)
    """
    text = re.sub(r"\s+", " ", repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(text: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` on one line, shortened to ``limit`` characters (the CLI prints errors through it)."""
    s = re.sub(r"\s+", " ", str(text)).strip()
    return s if len(s) <= limit else s[: limit - 3] + "..."


class FlrError(Exception):
    """Base class of every error flr raises on purpose."""


class InputFileError(FlrError, ValueError):
    """A file or folder cannot be read as what it claims to be (missing, corrupt, wrong kind)."""


class UnsupportedFormatError(InputFileError):
    """The reader cannot tell what a file is, or the format is not one flr reads."""


class DicomSeriesError(InputFileError):
    """A DICOM folder does not hold exactly one regular, readable image series."""


class GeometryMismatchError(FlrError, ValueError):
    """Two images that must share a voxel grid do not; the message shows both geometries."""


class SchemeError(FlrError, ValueError):
    """A label scheme is unknown, malformed, or matches nothing in a label map."""


class EmptyStructureError(FlrError, ValueError):
    """A structure that a computation needs has no voxels."""


class KernelInputError(FlrError, TypeError):
    """An array handed to a core kernel has an unsupported dtype, shape or value."""


class PlanError(FlrError, ValueError):
    """A resection plan is unknown, contradictory, or does not fit the case (missing segment, tumour id)."""


class GeometryError(FlrError, ValueError):
    """A voxel grid is impossible: a shape, spacing, origin or direction that no image can have."""


class ResultFormatError(FlrError, ValueError):
    """A saved result (JSON) does not match its schema; the message names every bad field."""


class ConfigFileError(InputFileError):
    """A configuration file (patient, rulebook, scheme) cannot be parsed: syntax, duplicate key, size."""


class RulebookError(FlrError, ValueError):
    """A rulebook is unknown, unreadable or malformed; the message names the rule id and the field."""


class FactError(FlrError, ValueError):
    """A fact handed to the rule engine has the wrong type or a value outside its vocabulary."""


class PatientValueError(FlrError, ValueError):
    """A patient measurement is missing, impossible or in the wrong unit."""


class UnsupportedConfigFormatError(ConfigFileError, UnsupportedFormatError):
    """A configuration file whose suffix is not ``.json``, ``.yaml`` or ``.yml``."""


class RulebookFileError(ConfigFileError, RulebookError):
    """A rulebook file that cannot be parsed (syntax, duplicate key, size, suffix): a config and a rulebook error."""


class SchemeFileError(ConfigFileError, SchemeError):
    """A label scheme file that cannot be parsed (syntax, duplicate key, size, suffix): a config and a scheme error."""


class InconsistentCaseError(FlrError, ValueError):
    """The inputs of a case contradict each other (a tumour outside the liver; with --strict, any finding)."""


#: Longest message that lists every one of several problems (:func:`join_problems`): under 700 characters
#: with the command line's ``flr: error: `` prefix (which cuts its line at :data:`MAX_MESSAGE_CHARS`).
MAX_PROBLEMS_CHARS = 680
#: Longest message that lists some problems and counts the rest: the count fits on the command line's line.
MAX_PARTIAL_CHARS = MAX_MESSAGE_CHARS - len("flr: error: ")


def join_problems(head: str, problems: list[str], limit: int = MAX_PROBLEMS_CHARS, total: int | None = None,
                  partial_limit: int = MAX_PARTIAL_CHARS) -> str:
    """``head`` and then the ``problems``, separated by ``; ``, on one line of bounded length.

    Every problem is listed when they all fit in ``limit`` characters; otherwise as many as fit in
    ``partial_limit`` (at most ``limit``), and the rest are counted (``; ... and 3 more``). A first problem too
    long on its own is cut (``...``): whatever the problems are, the result is at most ``limit`` characters.

    Parameters
    ----------
    head : the start of the message, e.g. ``"patient.yaml: "``.
    problems : one text per problem, in the order to report them.
    limit : the longest result.
    total : how many problems there are, when ``problems`` holds only the first of them (default: all).
    partial_limit : the longest result that leaves problems out.

    >>> join_problems("p.yaml: ", ["a is wrong", "b is wrong"])
    'p.yaml: a is wrong; b is wrong'
    >>> join_problems("p.yaml: ", [f"field {i} is wrong" for i in range(100)], partial_limit=60)
    'p.yaml: field 0 is wrong; field 1 is wrong; ... and 98 more'
    """
    count = len(problems) if total is None else max(total, len(problems))
    out = one_line(head, limit) + (" " if head[-1:].isspace() else "")
    texts = [one_line(p, limit) for p in problems]
    whole = out + "; ".join(texts)
    if count == len(problems) and len(whole) <= limit:
        return whole
    room = min(limit, partial_limit)
    shown = 0
    for text in texts:
        piece = ("; " if shown else "") + text
        if len(out) + len(piece) + len(f"; ... and {count - shown - 1} more") > room:
            break
        out, shown = out + piece, shown + 1
    if shown == 0 and texts:  # the first problem alone is too long: cut it, keep the count of the rest
        rest = f"; ... and {count - 1} more" if count > 1 else ""
        out, shown = out + one_line(texts[0], max(room - len(out) - len(rest), 10)), 1
    if shown < count:
        out += f"; ... and {count - shown} more"
    return one_line(out, limit)


#: Longest path a message shows (longer ones keep their end, where the file's name is).
MAX_PATH_CHARS = 160


def short_path(path: object, limit: int = MAX_PATH_CHARS) -> str:
    """A path for a message: as is when at most ``limit`` characters, else ``...`` and its last characters.

    >>> short_path("/data/case-7/patient.yaml")
    '/data/case-7/patient.yaml'
    >>> short_path("/deep" * 100 + "/patient.yaml", limit=30)
    '...deep/deep/deep/patient.yaml'
    """
    text = str(path)
    return text if len(text) <= limit else "..." + text[len(text) - limit + 3:]


class OutputError(FlrError, OSError):
    """An output cannot be written where asked: a folder where a file goes, a missing or read-only folder, a full
    disk, an input named as an output. The message names the path as the user gave it."""
