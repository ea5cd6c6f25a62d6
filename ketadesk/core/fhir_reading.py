"""A FHIR file (a Bundle or NDJSON, one resource a line) read into patients and problems.

Every resource is listed: read into a patient's chart, skipped with its reason, or refused
with its reason. References between resources are resolved inside the file only (the
``fullUrl`` of a Bundle entry, or ``Type/id``); a resource about a patient who is not in the
file is refused. Pure: the caller reads the bytes (``MAX_FILE_BYTES`` at most).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ketadesk.core.errors import UserFacingError
from ketadesk.core.fhir_import_mapping import (
    DEFAULT_SKIP_REASON,
    PRESCRIPTION_NOT_IMPORTED,
    READ_TYPES,
    SKIPPED_REASONS,
    ImportedPatient,
    ImportedVitals,
    ResourceProblem,
    is_ketadesk_prescription,
    is_questionnaire_observation,
    observation_moment,
    read_condition,
    read_medication,
    read_patient,
    read_questionnaire,
    read_vital_observation,
    validated,
)

#: Largest file read (bytes): one practice's export is one small bundle per patient.
MAX_FILE_BYTES = 25 * 1024 * 1024
MAX_FILES = 200_000


@dataclass(frozen=True)
class FhirReading:
    """What the files hold: readable patients, refused resources (``problems``) and skipped
    ones (``skipped``), and how many resources there were."""

    patients: tuple[ImportedPatient, ...]
    problems: tuple[ResourceProblem, ...]
    skipped: tuple[ResourceProblem, ...]
    resource_count: int

    @property
    def has_problems(self) -> bool:
        return bool(self.problems)

    @property
    def prescriptions_not_imported(self) -> int:
        """How many KetaDesk prescriptions the files hold (listed, never imported)."""
        return sum(1 for p in self.skipped if p.reason.endswith(PRESCRIPTION_NOT_IMPORTED))

    def skipped_by_kind(self) -> dict[str, int]:
        """How many resources of each type were skipped on purpose."""
        counts: dict[str, int] = {}
        for problem in self.skipped:
            counts[problem.kind] = counts.get(problem.kind, 0) + 1
        return counts


@dataclass(frozen=True)
class _Raw:
    where: str
    full_url: str | None
    data: dict[str, Any]


def load_fhir_paths(paths: Sequence[Path]) -> list[tuple[str, bytes]]:
    """(name, bytes) of each file, a folder meaning its .json and .ndjson files. A file over
    MAX_FILE_BYTES is refused (reading stops one byte past the limit)."""
    found: list[Path] = []
    for path in paths:
        path = path.expanduser()
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir()
                                if p.is_file() and p.suffix.lower() in (".json", ".ndjson")))
        elif path.exists():
            found.append(path)
        else:
            raise UserFacingError(f"There is no file {path.name} there.")
    if not found:
        raise UserFacingError("There are no .json or .ndjson files to import there.")
    if len(found) > MAX_FILES:
        raise UserFacingError(f"{len(found):,} files are more than the {MAX_FILES:,} read at once.")
    files = []
    for path in found:
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except OSError:
            raise UserFacingError(f"The file {path.name} could not be read.") from None
        if len(data) > MAX_FILE_BYTES:
            raise UserFacingError(file_too_large_message(path.name, path.stat().st_size))
        files.append((path.name, data))
    return files


def file_too_large_message(name: str, size: int) -> str:
    return (
        f"{name} is {size / 1_048_576:.1f} MB; KetaDesk reads FHIR files up to "
        f"{MAX_FILE_BYTES // 1_048_576} MB. Export one bundle per patient (as KetaDesk does) "
        "and import the folder."
    )


def _documents(name: str, data: bytes) -> Iterator[_Raw | ResourceProblem]:
    if len(data) > MAX_FILE_BYTES:
        yield ResourceProblem(name, file_too_large_message(name, len(data)))
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        yield ResourceProblem(name, "the file is not UTF-8 text, so it is not FHIR JSON")
        return
    try:
        whole = json.loads(text)
    except json.JSONDecodeError as error:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) < 2 or error.msg != "Extra data":  # NDJSON: a whole resource a line
            yield ResourceProblem(
                name, f"the file is not valid JSON (line {error.lineno}, column "
                f"{error.colno}: {error.msg.lower()})"
            )
            return
        yield from _ndjson(name, text)
        return
    yield from _top_level(name, whole)


def _ndjson(name: str, text: str) -> Iterator[_Raw | ResourceProblem]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{name}, line {number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            yield ResourceProblem(where, f"the line is not valid JSON ({error.msg.lower()})")
            continue
        yield from _top_level(where, item)


def _top_level(where: str, item: Any) -> Iterator[_Raw | ResourceProblem]:
    if not isinstance(item, dict) or "resourceType" not in item:
        yield ResourceProblem(where, "this is JSON, but not a FHIR resource (no resourceType)")
        return
    if item["resourceType"] != "Bundle":
        yield _Raw(where, None, item)
        return
    entries = item.get("entry") or []
    if not isinstance(entries, list):
        yield ResourceProblem(where, "the Bundle's entry is not a list")
        return
    for number, entry in enumerate(entries, start=1):
        place = f"{where}, entry {number}"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or "resourceType" not in resource:
            yield ResourceProblem(place, "the entry holds no resource")
            continue
        kind = resource["resourceType"]
        label = f"{place} ({kind}{' ' + str(resource['id']) if resource.get('id') else ''})"
        yield _Raw(label, entry.get("fullUrl"), resource)


def read_fhir_files(files: Sequence[tuple[str, bytes]], *, today: date) -> FhirReading:
    """Read (name, bytes) files into patients; every resource not read is listed with why."""
    problems: list[ResourceProblem] = []
    skipped: list[ResourceProblem] = []
    raws: list[_Raw] = []
    for name, data in files:
        for found in _documents(name, data):
            (problems.append(found) if isinstance(found, ResourceProblem) else raws.append(found))
    patients: dict[str, ImportedPatient] = {}
    models: list[tuple[_Raw, Any]] = []
    for raw in raws:
        kind = str(raw.data.get("resourceType"))
        try:
            model = validated(raw.data)
        except UserFacingError as error:
            problems.append(ResourceProblem(raw.where, str(error)))
            continue
        if kind not in READ_TYPES:
            reason = SKIPPED_REASONS.get(kind, DEFAULT_SKIP_REASON.format(type=kind))
            skipped.append(ResourceProblem(raw.where, f"not imported: {reason}", blocks=False,
                                           kind=kind))
            continue
        if kind == "Patient":
            try:
                patient = read_patient(model, raw.where, today)
            except UserFacingError as error:
                problems.append(ResourceProblem(raw.where, str(error)))
                continue
            for key in _keys(raw, model):
                patients[key] = patient
        else:
            models.append((raw, model))
    for raw, model in models:
        reference = _subject(model)
        subject = patients.get(reference or "")
        if subject is None:
            problems.append(ResourceProblem(
                raw.where,
                f"it is about patient '{reference}', who is not in the file"
                if reference else "it does not say which patient it is about",
            ))
            continue
        try:
            note = _read_into(subject, model)
        except UserFacingError as error:
            problems.append(ResourceProblem(raw.where, str(error)))
            continue
        if note:
            skipped.append(ResourceProblem(raw.where, f"not imported: {note}", blocks=False,
                                           kind=model.get_resource_type()))
    unique = list({id(p): p for p in patients.values()}.values())
    return FhirReading(tuple(unique), tuple(problems), tuple(skipped), len(raws))


def _keys(raw: _Raw, model: Any) -> list[str]:
    keys = [f"Patient/{model.id}"] if model.id else []
    if raw.full_url:
        keys.append(raw.full_url)
        if "/Patient/" in raw.full_url:  # an absolute URL: the Patient/id tail matches too
            keys.append("Patient/" + raw.full_url.rsplit("/Patient/", 1)[1])
    return keys


def _subject(model: Any) -> str | None:
    reference = getattr(model, "subject", None) or getattr(model, "patient", None)
    return str(reference.reference) if reference is not None and reference.reference else None


def _read_into(patient: ImportedPatient, model: Any) -> str | None:
    """Read one resource into the patient's chart; a reason when it is deliberately skipped."""
    kind = model.get_resource_type()
    if kind == "Condition":
        patient.conditions.append(read_condition(model))
    elif is_ketadesk_prescription(model):
        return PRESCRIPTION_NOT_IMPORTED
    elif kind in ("MedicationStatement", "MedicationRequest"):
        medication = read_medication(model)
        if medication is None:
            return "the other system marked it as entered in error"
        patient.medications.append(medication)
    elif kind == "Observation":
        if is_questionnaire_observation(model):
            return "questionnaire answers are read from the QuestionnaireResponse"
        if model.status == "entered-in-error":
            return "the other system marked it as entered in error"
        moment = observation_moment(model)
        vitals = patient.vitals.get(moment) or ImportedVitals(moment)
        if not read_vital_observation(model, vitals):
            return "KetaDesk keeps blood pressure, heart rate and weight observations only"
        if all(v is None for v in (vitals.systolic, vitals.diastolic, vitals.heart_rate,
                                   vitals.weight_kg)):
            return "it carries no value (the other system recorded why it is absent)"
        patient.vitals[moment] = vitals
    elif kind == "QuestionnaireResponse":
        form = read_questionnaire(model)
        if form is None:
            return "KetaDesk keeps PHQ-9 and GAD-7 responses only"
        patient.questionnaires.append(form)
    return None
