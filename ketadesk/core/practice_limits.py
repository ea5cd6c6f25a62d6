"""Practice dose limits, per route, each value carrying where it came from.

The shipped defaults live in ``resources/protocols/default_limits.json`` (validated against
``practice_limits.schema.json``). A value ships only where a public source can be cited; an empty
value (``None``) means "the practice has not set this", and validation then blocks signing until
it is set. The persistence layer stores limits with ``practice_limits_to_dict`` and reads them
back with ``practice_limits_from_dict``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ketadesk.core.errors import UserFacingError
from ketadesk.core.protocols import Route
from ketadesk.resources import load_resource_json, resource_schema_validator

if TYPE_CHECKING:  # jsonschema loads only when a file is validated (ketadesk.resources)
    import jsonschema

LIMITS_FORMAT = "ketadesk-practice-limits"
LIMITS_FORMAT_VERSION = 1


@dataclass(frozen=True)
class LimitValue:
    """One limit: ``value`` in the unit its field names (``None`` = not set) and its source."""

    value: float | None = None
    source: str = ""

    @property
    def is_set(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class RouteLimits:
    """Limits for one route: single dose in mg/kg and mg, daily total in mg, minimum interval
    between doses in hours, and sessions per 7-day week."""

    max_single_dose_mg_per_kg: LimitValue = field(default_factory=LimitValue)
    max_single_dose_mg: LimitValue = field(default_factory=LimitValue)
    max_daily_mg: LimitValue = field(default_factory=LimitValue)
    min_interval_hours: LimitValue = field(default_factory=LimitValue)
    max_sessions_per_week: LimitValue = field(default_factory=LimitValue)


#: Field name -> words used in messages and the settings page.
ROUTE_LIMIT_FIELDS: Mapping[str, str] = {
    "max_single_dose_mg_per_kg": "maximum single dose in mg/kg",
    "max_single_dose_mg": "maximum single dose in mg",
    "max_daily_mg": "maximum daily dose in mg",
    "min_interval_hours": "minimum interval between doses in hours",
    "max_sessions_per_week": "maximum number of sessions per week",
}


@dataclass(frozen=True)
class Reference:
    id: str
    title: str
    url: str


@dataclass(frozen=True)
class PracticeLimits:
    """Limits per route plus how old a chart weight may be (days) before it counts as stale."""

    routes: Mapping[Route, RouteLimits] = field(default_factory=dict)
    weight_max_age_days: LimitValue = field(default_factory=LimitValue)
    references: tuple[Reference, ...] = ()

    def for_route(self, route: Route) -> RouteLimits:
        """Return the limits for ``route``; a route the practice never configured has none set."""
        return self.routes.get(route, RouteLimits())

    def with_route(self, route: Route, limits: RouteLimits) -> PracticeLimits:
        """Return a copy with ``route``'s limits replaced (the settings page edits this way)."""
        routes = dict(self.routes)
        routes[route] = limits
        return replace(self, routes=routes)


def _schema_error_text(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "the top level"
    return f"at {where}: {error.message}"


def practice_limits_from_dict(data: Any) -> PracticeLimits:
    """Build limits from their JSON form; data that does not match the schema raises
    UserFacingError naming the first problem."""
    validator = resource_schema_validator("protocols", "practice_limits.schema.json")
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        raise UserFacingError(
            f"These practice limits are not valid ({_schema_error_text(errors[0])})."
        )
    routes: dict[Route, RouteLimits] = {}
    for route_name, entry in data["routes"].items():
        routes[Route(route_name)] = RouteLimits(
            **{name: _limit(entry[name]) for name in ROUTE_LIMIT_FIELDS}
        )
    return PracticeLimits(
        routes=routes,
        weight_max_age_days=_limit(data.get("weight_max_age_days")),
        references=tuple(
            Reference(id=r["id"], title=r["title"], url=r["url"])
            for r in data.get("references", [])
        ),
    )


def _limit(entry: Mapping[str, Any] | None) -> LimitValue:
    if entry is None:
        return LimitValue()
    value = entry["value"]
    return LimitValue(value=None if value is None else float(value), source=entry["source"])


def _limit_dict(limit: LimitValue) -> dict[str, Any]:
    return {"value": limit.value, "source": limit.source}


def practice_limits_to_dict(limits: PracticeLimits) -> dict[str, Any]:
    """Return the limits as JSON-able values in the same layout as ``default_limits.json``."""
    return {
        "format": LIMITS_FORMAT,
        "format_version": LIMITS_FORMAT_VERSION,
        "weight_max_age_days": _limit_dict(limits.weight_max_age_days),
        "routes": {
            route.value: {
                name: _limit_dict(getattr(route_limits, name)) for name in ROUTE_LIMIT_FIELDS
            }
            for route, route_limits in limits.routes.items()
        },
        "references": [{"id": r.id, "title": r.title, "url": r.url} for r in limits.references],
    }


@lru_cache(maxsize=1)
def default_practice_limits() -> PracticeLimits:
    """Return the shipped defaults (values only where a public source is cited; else empty)."""
    return practice_limits_from_dict(load_resource_json("protocols", "default_limits.json"))


def load_practice_limits(path: Path) -> PracticeLimits:
    """Read practice limits from a JSON file; unreadable or invalid files raise UserFacingError."""
    from ketadesk.core.json_input import parse_json_capped, read_capped_text

    data = parse_json_capped(
        read_capped_text(path, limit=1024 * 1024, what="practice limits file"), name=path.name
    )
    return practice_limits_from_dict(data)
