"""Feature columns - raw feature values as Arrow columns of the features dataset, one type each.

The envelope lets a feature be a number, a string, a bool or null in any record, so one column
of one object may meet several kinds. Each column gets the narrowest type that holds every value
of the object exactly (README "Feature types"):

- only bools: ``bool``; only integers: ``int64``;
- numbers whose integers all lie within +-2^53 (exact in a double): ``float64``;
- anything else (strings, or kinds mixed otherwise): ``string``, numbers and bools written as
  their JSON text (5411 -> "5411", 12.5 -> "12.5", true -> "true");
- only nulls: a null column, which takes the type of the other chunks of its object.

A chunk's table is typed by its own values; ``concat_features`` joins the chunks of an object
by the same rule, so no value is refused, lost or changed by the object it lands in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from shadow.predictions import FEATURE_KEY_COLUMNS

if TYPE_CHECKING:
    from shadow.envelope import Envelope
    from shadow.prediction_store import ChunkKeys

EXACT_INT = 2**53
"""Integers up to this magnitude are exact in a double."""

_NONE = type(None)


Redact = Callable[[dict[str, Any]], dict[str, Any]]
"""What features_table passes each record's features through (the worker's card guard)."""


def features_table(
    keys: ChunkKeys, envelopes: Sequence[Envelope], redact: Redact | None = None
) -> pa.Table:
    """The features dataset rows of a chunk: txn_id, event_time, then the raw features, each
    record through `redact` first (shadow.redaction's downstream guard)."""
    rows = [redact(e.features) if redact else e.features for e in envelopes]
    names = list(dict.fromkeys(name for row in rows for name in row))
    columns = [feature_column([row.get(name) for row in rows]) for name in names]
    fields = [pa.field(name, column.type) for name, column in zip(names, columns, strict=True)]
    schema = pa.schema([*FEATURE_KEY_COLUMNS, *fields])
    return pa.Table.from_arrays([keys.txn_id, keys.event_time, *columns], schema=schema)


def feature_column(values: list[Any]) -> pa.Array:
    """One feature's values in a chunk as one Arrow array, typed by the module's rule."""
    kinds = set(map(type, values)) - {_NONE}
    if not kinds:
        return pa.nulls(len(values))
    if kinds == {bool}:
        return pa.array(values, pa.bool_())
    if kinds == {int}:
        return pa.array(values, pa.int64())
    if kinds == {float} or (kinds == {int, float} and _exact(values)):
        return pa.array(values, pa.float64())
    if kinds == {str}:
        return pa.array(values, pa.string())
    return pa.array([_text(v) for v in values], pa.string())


def _exact(values: Iterable[Any]) -> bool:
    return all(-EXACT_INT <= v <= EXACT_INT for v in values if type(v) is int)


def _text(value: Any) -> str | None:
    """A value as the string column holds it: strings as they are, others as JSON text."""
    if value is None or isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def concat_features(tables: Sequence[pa.Table]) -> pa.Table:
    """One object's feature chunks as one table: columns by name (absent ones null), each
    column of the type that holds every chunk's values exactly."""
    names = list(dict.fromkeys(name for table in tables for name in table.column_names))
    columns = {}
    for name in names:
        parts = [_column_or_nulls(table, name) for table in tables]
        target = _joined_type([part.type for part in parts], parts)
        columns[name] = pa.chunked_array([_cast(part, target) for part in parts], target)
    fields = [*FEATURE_KEY_COLUMNS]
    fields += [pa.field(n, columns[n].type) for n in names[len(FEATURE_KEY_COLUMNS) :]]
    return pa.Table.from_arrays([columns[n] for n in names], schema=pa.schema(fields))


def _column_or_nulls(table: pa.Table, name: str) -> pa.Array:
    if name in table.column_names:
        return table.column(name).combine_chunks()
    return pa.nulls(table.num_rows)


def _joined_type(types: list[pa.DataType], parts: list[pa.Array]) -> pa.DataType:
    kinds = {t for t in types if not pa.types.is_null(t)}
    if not kinds:
        return pa.null()
    if len(kinds) == 1:
        return kinds.pop()
    if kinds == {pa.int64(), pa.float64()} and all(
        _ints_exact(p) for p in parts if p.type == pa.int64()
    ):
        return pa.float64()
    return pa.string()


def _ints_exact(array: pa.Array) -> bool:
    low, high = (value.as_py() for value in pc.min_max(array).values())
    return low is None or (low >= -EXACT_INT and high <= EXACT_INT)


def _cast(array: pa.Array, target: pa.DataType) -> pa.Array:
    if array.type == target:
        return array
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), target)
    if target == pa.string():  # the JSON text, exactly as a mixed chunk writes it
        return pa.array([_text(v) for v in array.to_pylist()], pa.string())
    return array.cast(target)
