"""One accessor for files under ``resources/``, from a source tree or a PyInstaller bundle.

Besides locating files, this module reads the JSON data files (knowledge base, instruments,
counties, templates, limits, patient instructions) and checks them against their JSON Schema.
Every failure - file missing, unreadable, not JSON, not matching its schema - raises
:class:`ResourceFileError`, a :class:`~ketadesk.core.errors.UserFacingError` that names the
file and the problem in plain words. Callers that have their own wording catch it and use its
fields (``problem``, ``file_name``, ``line``, ``location``, ``detail``).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ketadesk.core.errors import UserFacingError

if TYPE_CHECKING:  # jsonschema loads only when a data file is validated, not at start-up
    from jsonschema.protocols import Validator

Problem = Literal["missing", "unreadable", "not_json", "invalid"]


class ResourceFileError(UserFacingError):
    """A JSON data file is missing, unreadable, not JSON, or does not match its schema.

    ``file_name`` is the file as shown to the user (its name, or its path under
    ``resources/``); ``line``/``column`` are set for ``not_json`` (``None`` when the file is
    not UTF-8 text); ``location`` is the path inside the document and ``detail`` the schema
    message for ``invalid``; for ``unreadable`` ``detail`` is the operating system's reason.
    """

    def __init__(
        self,
        problem: Problem,
        file_name: str,
        *,
        line: int | None = None,
        column: int | None = None,
        location: tuple[str | int, ...] = (),
        detail: str = "",
    ) -> None:
        self.problem: Problem = problem
        self.file_name = file_name
        self.line = line
        self.column = column
        self.location = location
        self.detail = detail
        super().__init__(_plain_message(self))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Keeps the error intact when it crosses a process boundary (plan rendering workers).
        fields = (self.problem, self.file_name, self.line, self.column, self.location, self.detail)
        return (_rebuild_resource_error, fields)

    @property
    def where(self) -> str:
        """The place in the document as ``a/0/b``, or ``""`` for the top level."""
        return "/".join(str(part) for part in self.location)


def _rebuild_resource_error(
    problem: Problem,
    file_name: str,
    line: int | None,
    column: int | None,
    location: tuple[str | int, ...],
    detail: str,
) -> ResourceFileError:
    return ResourceFileError(
        problem, file_name, line=line, column=column, location=location, detail=detail
    )


def _plain_message(error: ResourceFileError) -> str:
    name = error.file_name
    if error.problem == "missing":
        return f"The data file {name} is missing."
    if error.problem == "unreadable":
        return f"The data file {name} cannot be read ({error.detail})."
    if error.problem == "not_json":
        if error.line is None:
            return f"The data file {name} is not UTF-8 text."
        return f"The data file {name} is not valid JSON (line {error.line}, column {error.column})."
    where = error.where or "the top level"
    return f"The data file {name} does not match its schema at {where}: {error.detail}"


def resources_dir() -> Path:
    """Return the folder that holds KetaDesk's resources (knowledge base, fonts, icons)."""
    bundle_root = getattr(sys, "_MEIPASS", None)
    if bundle_root is not None:
        return Path(bundle_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """Return the path of one resource file, e.g. ``resource_path("fonts", "DejaVuSans.ttf")``."""
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"KetaDesk resource missing: {'/'.join(parts)}")
    return path


def read_json_file(path: Path, *, shown_name: str | None = None) -> Any:
    """Parse the JSON file at ``path``; raise :class:`ResourceFileError` if that fails.

    ``shown_name`` is how the file is named in the message (default: its file name).
    """
    name = shown_name or path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResourceFileError("missing", name) from None
    except OSError as error:
        raise ResourceFileError("unreadable", name, detail=str(error.strerror)) from None
    except UnicodeDecodeError as error:
        raise ResourceFileError("not_json", name) from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ResourceFileError(
            "not_json", name, line=error.lineno, column=error.colno
        ) from error


def json_schema_validator(schema_path: Path, *, shown_name: str | None = None) -> Validator:
    """Return a validator for the JSON Schema at ``schema_path`` (draft 2020-12 by default).

    The schema itself is not checked here (that costs more than validating the knowledge
    base); :func:`resource_schema_validator` checks it once per process.
    """
    import jsonschema

    schema = read_json_file(schema_path, shown_name=shown_name)
    validator_class = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    validator: Validator = validator_class(schema)
    return validator


def validate_json(data: Any, validator: Validator, *, shown_name: str) -> Any:
    """Return ``data`` if it matches ``validator``'s schema, else raise ResourceFileError.

    The problem reported is jsonschema's ``best_match`` (as ``jsonschema.validate`` reports).
    """
    import jsonschema

    problem = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if problem is not None:
        raise ResourceFileError(
            "invalid",
            shown_name,
            location=tuple(problem.absolute_path),
            detail=problem.message,
        ) from problem
    return data


def read_validated_json(path: Path, schema_path: Path) -> Any:
    """Parse the JSON file at ``path`` and check it against the schema at ``schema_path``.

    Nothing is cached (the knowledge base can be loaded from any folder). Raises
    :class:`ResourceFileError` naming the file and the problem.
    """
    data = read_json_file(path)
    return validate_json(data, json_schema_validator(schema_path), shown_name=path.name)


@functools.cache
def resource_schema_validator(*parts: str) -> Validator:
    """Return the validator of the schema ``resources/<parts>``, compiled once per process.

    The schema is itself checked against its meta-schema the first time.
    """
    import jsonschema

    shown = "/".join(parts)
    validator = json_schema_validator(resources_dir().joinpath(*parts), shown_name=shown)
    try:
        type(validator).check_schema(validator.schema)
    except jsonschema.SchemaError as error:
        raise ResourceFileError(
            "invalid", shown, location=tuple(error.absolute_path), detail=error.message
        ) from error
    return validator


def load_resource_json(*parts: str) -> Any:
    """Parse ``resources/<parts>`` (no schema check; for data whose loader checks it).

    Not cached: callers cache what they build from it.
    """
    return read_json_file(resources_dir().joinpath(*parts), shown_name="/".join(parts))


def load_validated_json(*parts: str, schema: str | tuple[str, ...]) -> Any:
    """Parse ``resources/<parts>`` and check it against its JSON Schema.

    ``schema`` is a file name in the same folder (``"instrument.schema.json"``) or a path under
    ``resources/`` as a tuple of parts. The compiled schema is cached; the data is not (callers
    cache what they build from it). Raises :class:`ResourceFileError` naming the file.
    """
    schema_parts = (*parts[:-1], schema) if isinstance(schema, str) else schema
    data = load_resource_json(*parts)
    validator = resource_schema_validator(*schema_parts)
    return validate_json(data, validator, shown_name="/".join(parts))
