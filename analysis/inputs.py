"""Inputs - what a comparison refuses to run on, each refusal one line naming the problem.

A store that does not exist, a folder that is not a store, a window without predictions, a
candidate the window does not hold, an object that is not readable Parquet: the comparison
stops before any evidence is written (UsageError, exit 2), unless corrupt objects are to be
skipped and counted (`shadow compare --skip-corrupt`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from shadow.dataset import open_dataset
from shadow.errors import StoreError, UsageError
from shadow.predictions import FEATURES, LABELS, PREDICTIONS

if TYPE_CHECKING:
    from shadow.objectstore import ObjectStore


class CorruptObject(UsageError):
    """An object of the store is not readable Parquet."""

    def __init__(self, key: str, problem: str, more: int = 0) -> None:
        self.key = key
        others = f" (and {more} more)" if more else ""
        super().__init__(
            f"object {key} is not readable Parquet ({problem}){others}: restore or remove it, "
            "or run `shadow compare --skip-corrupt` to leave it out and count it"
        )


def check_store(store: ObjectStore) -> None:
    """The store exists and holds a predictions/ folder."""
    from pyarrow.fs import FileType

    fs, root = store.arrow()
    kind = _kind(store, fs, root)
    if kind != FileType.Directory:
        raise UsageError(
            f"store {store.uri} does not exist: point store.uri (--config, SHADOW__STORE__URI) "
            "at the folder or bucket the workers write to"
        )
    if _kind(store, fs, f"{root}/{PREDICTIONS}") != FileType.Directory:
        raise UsageError(
            f"store {store.uri} has no {PREDICTIONS}/ folder: it is not a shadow store, or no "
            "worker has written to it yet"
        )


def _kind(store: ObjectStore, fs, path: str):
    try:
        return fs.get_file_info(path).type
    except OSError as exc:
        raise StoreError(store.uri, f"cannot read {path}: {exc}") from None


def empty_window(store: ObjectStore, start: dt.datetime | None, end: dt.datetime | None):
    """The error for a window without predictions, naming the days the store does hold."""
    days = stored_days(store)
    held = f"; its predictions are dated {days[0]}..{days[-1]}" if days else ""
    span = f"{_moment(start)}..{_moment(end)}"
    return UsageError(f"no predictions in the window {span} of store {store.uri}{held}")


def stored_days(store: ObjectStore) -> list[str]:
    """The date= partitions of the predictions, sorted."""
    from pyarrow.fs import FileSelector

    fs, root = store.arrow()
    try:
        infos = fs.get_file_info(FileSelector(f"{root}/{PREDICTIONS}"))
    except OSError:
        return []
    names = (info.base_name for info in infos)
    return sorted(name.removeprefix("date=") for name in names if name.startswith("date="))


def _moment(moment: dt.datetime | None) -> str:
    return moment.isoformat() if moment is not None else ""


def unknown_candidates(missing: list[str], present: list[str]) -> UsageError:
    known = ", ".join(present) or "none"
    return UsageError(
        f"candidate {', '.join(missing)} has no predictions in the window (candidates there: "
        f"{known})"
    )


def corrupt_objects(
    store: ObjectStore, start: dt.datetime | None, end: dt.datetime | None
) -> list[tuple[str, str]]:
    """Every object a comparison of the window reads that is not readable Parquet, as (key,
    problem). An object that cannot be fetched is a store error, not a corrupt object."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, root = store.arrow()
    found = []
    for name, window in ((PREDICTIONS, (start, end)), (FEATURES, (start, end)), (LABELS, ())):
        dataset = open_dataset(store, name, *window)
        for path in dataset.files if dataset is not None else []:
            try:
                with fs.open_input_file(path) as source:
                    data = source.read()
            except OSError as exc:
                raise StoreError(store.uri, f"cannot read {path}: {exc}") from None
            try:
                pq.read_table(pa.BufferReader(data))
            except (pa.ArrowException, OSError) as exc:
                problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                found.append((path.removeprefix(root).lstrip("/"), problem))
    return found
