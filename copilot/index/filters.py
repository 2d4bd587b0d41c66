"""Turn search filters into Qdrant Edge filters, always under one owner.

Every filter the store sends to the engine is made by :func:`scoped`, which puts
``owner == X`` first in ``must``. Whatever else a caller asks for is ANDed under it, so an
``OR`` in a caller's filter can widen the match only inside that owner's points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from qdrant_edge import FieldCondition, Filter, MatchAny, MatchValue, RangeFloat

OWNER = "owner"


@dataclass(frozen=True)
class SearchFilters:
    """What a person can narrow a search by. Empty means no constraint on that field."""

    sources: tuple[str, ...] = ()  # payload "source" in any of
    kinds: tuple[str, ...] = ()  # "mail" / "file"
    item_ids: tuple[str, ...] = ()
    senders: tuple[str, ...] = ()  # payload "sender" (lower-cased address)
    folders: tuple[str, ...] = ()
    modified_from: datetime | None = None  # payload "modified_ts" >= this
    modified_to: datetime | None = None  # payload "modified_ts" <= this


def epoch_seconds(when: datetime) -> float:
    """Seconds since the epoch; a naive datetime is taken as UTC, not the machine's zone,
    so the same value means the same instant on every machine that indexes or queries."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def owner_condition(owner: object) -> FieldCondition:
    """``owner == X``; refuses anything but a non-empty string (a missing owner too)."""
    if not isinstance(owner, str) or not owner.strip():
        raise ValueError("an owner (a non-empty user id) is required for every index query")
    return FieldCondition(OWNER, match=MatchValue(owner))


def scoped(owner: str, *conditions: Any, must_not: Sequence[Any] = ()) -> Filter:
    """A filter that can only ever match ``owner``'s points."""
    return Filter(must=[owner_condition(owner), *conditions], must_not=list(must_not) or None)


def search_conditions(filters: SearchFilters | None) -> list[Any]:
    """The conditions for a :class:`SearchFilters`, to pass to :func:`scoped`."""
    if filters is None:
        return []
    out: list[Any] = []
    for key, values in (
        ("source", filters.sources),
        ("kind", filters.kinds),
        ("item_id", filters.item_ids),
        ("sender", tuple(s.lower() for s in filters.senders)),
        ("folder", filters.folders),
    ):
        if values:
            out.append(_match_any(key, list(values)))
    if filters.modified_from is not None or filters.modified_to is not None:
        start = epoch_seconds(filters.modified_from) if filters.modified_from else None
        end = epoch_seconds(filters.modified_to) if filters.modified_to else None
        out.append(FieldCondition("modified_ts", range=RangeFloat(gte=start, lte=end)))
    return out


def owner_from_metadata_filters(filters: MetadataFilters | None) -> str | None:
    """The owner named by a top-level ``owner == X`` in an AND filter, if any.

    Only that shape names an owner: under OR or NOT it would not constrain the match.
    """
    if filters is None or filters.condition not in (None, FilterCondition.AND):
        return None
    owners = {
        f.value
        for f in filters.filters
        if isinstance(f, MetadataFilter) and f.key == OWNER and f.operator == FilterOperator.EQ
    }
    if len(owners) > 1:
        raise ValueError(f"conflicting owners in filters: {sorted(map(str, owners))}")
    owner = next(iter(owners), None)
    if owner is not None and not isinstance(owner, str):
        raise ValueError(f"the filter owner == {owner!r} needs a user id (a string)")
    return owner


def metadata_filter(filters: MetadataFilters) -> Filter:
    """LlamaIndex ``MetadataFilters`` as an engine filter (to be ANDed under the owner)."""
    conditions = [
        metadata_filter(f) if isinstance(f, MetadataFilters) else _condition(f)
        for f in filters.filters
    ]
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return Filter(must=conditions)
    if condition == FilterCondition.OR:
        return Filter(should=conditions)
    if condition == FilterCondition.NOT:
        return Filter(must_not=conditions)
    raise ValueError(f"unsupported filter condition: {condition}")


def _condition(f: MetadataFilter) -> Any:
    op, key, value = f.operator, f.key, f.value
    if op == FilterOperator.EQ:
        return FieldCondition(key, match=MatchValue(_scalar(key, value)))
    if op == FilterOperator.NE:
        return Filter(must_not=[FieldCondition(key, match=MatchValue(_scalar(key, value)))])
    if op in (FilterOperator.IN, FilterOperator.ANY):
        return _match_any(key, value)
    if op == FilterOperator.NIN:
        return Filter(must_not=[_match_any(key, value)])
    bounds = {
        FilterOperator.GT: "gt",
        FilterOperator.GTE: "gte",
        FilterOperator.LT: "lt",
        FilterOperator.LTE: "lte",
    }
    if op in bounds:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"filter {key} {op.value} needs a number, got {value!r}")
        return FieldCondition(key, range=RangeFloat(**{bounds[op]: float(value)}))
    raise ValueError(f"unsupported filter operator {op.value!r} on {key!r}")


def _scalar(key: str, value: Any) -> str | int | bool:
    if isinstance(value, str | int | bool):
        return value
    raise ValueError(f"filter on {key!r} needs a string, integer or boolean, got {value!r}")


def _match_any(key: str, values: Any) -> FieldCondition:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValueError(f"filter on {key!r} needs a list of values, got {values!r}")
    values = list(values)
    if not (
        all(isinstance(v, str) for v in values)
        or all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    ):
        raise ValueError(f"filter on {key!r} needs all strings or all integers, got {values!r}")
    return FieldCondition(key, match=MatchAny(values))
