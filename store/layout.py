"""Where things live in a store directory.

    <data>/store.json                           schema version
    <data>/catalog.duckdb                       views only; opened read-only by readers
    <data>/<table>/_schema.parquet              zero-row seed, so a fresh store reads as empty
    <data>/<table>/date=YYYY-MM-DD/hour=HH/*.parquet   immutable segments
    <data>/findings/                            the correlator's materialized results
    <data>/nats/                                the embedded nats-server's JetStream

Segments are written to a dot-prefixed ``.tmp`` name and renamed, so a reader's
``**/*.parquet`` glob never sees a half-written file.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from instrumentation.errors import ChoreoscopeError, ConfigurationError
from store.durable_files import replacing
from store.schema import SCHEMA_VERSION, TABLES, UPGRADES_FROM

DEFAULT_DATA_DIR = Path("choreoscope-data")
STORE_FILE = "store.json"
CATALOG_FILE = "catalog.duckdb"
SEED_FILE = "_schema.parquet"
# compaction's output segments are named so: they hold the rows of segments written
# before them, which a reader that read those need not read again
COMPACTED_PREFIX = "compacted-"


class StoreVersionError(ChoreoscopeError):
    """The store on disk was written with another schema version."""

    def __init__(self, *, data_dir: Path, found: object, expected: int) -> None:
        self.data_dir = data_dir
        self.found = found
        self.expected = expected
        super().__init__(
            f"the store at {data_dir} has schema version {found}, this choreoscope reads "
            f"version {expected}: point --data at a new directory, or move this one aside "
            "(its Parquet segments stay readable with any DuckDB client)"
        )


@dataclass(frozen=True)
class StoreLayout:
    """Paths of one store directory. Cheap; creates nothing until ``ensure()``."""

    root: Path

    @classmethod
    def at(cls, data_dir: str | Path) -> StoreLayout:
        return cls(Path(data_dir).expanduser().resolve())

    @property
    def store_file(self) -> Path:
        return self.root / STORE_FILE

    @property
    def catalog(self) -> Path:
        return self.root / CATALOG_FILE

    @property
    def findings(self) -> Path:
        return self.root / "findings"

    @property
    def nats(self) -> Path:
        return self.root / "nats"

    @property
    def spill(self) -> Path:
        """Where DuckDB spills what does not fit in memory (store/spill.py)."""
        return self.root / ".spill"

    def table_dir(self, table: str) -> Path:
        if table not in TABLES:
            raise ConfigurationError(
                setting="table", value=table, fix=f"use one of {', '.join(TABLES)}"
            )
        return self.root / table

    def partition_dir(self, table: str, at: dt.datetime) -> Path:
        at = at.astimezone(dt.UTC)
        return self.table_dir(table) / f"date={at:%Y-%m-%d}" / f"hour={at:%H}"

    def glob(self, table: str) -> str:
        """The glob every reader uses for a table (seed included)."""
        return str(self.table_dir(table) / "**" / "*.parquet")

    def seed(self, table: str) -> Path:
        """The table's empty schema seed: read with its segments, it keeps every
        column there whatever the segments hold."""
        return self.table_dir(table) / SEED_FILE

    def segments(self, table: str) -> frozenset[str]:
        """The table's files now, seed included (segments are immutable: written under
        a temporary name, then renamed)."""
        return frozenset(glob.glob(self.glob(table), recursive=True))

    def exists(self) -> bool:
        return self.store_file.exists()

    def check_version(self) -> None:
        """Fail loudly if the store was written by another schema version (one this
        version upgrades, ``UPGRADES_FROM``, is read as it is)."""
        found = self._version()
        if found != SCHEMA_VERSION and found not in UPGRADES_FROM:
            raise StoreVersionError(data_dir=self.root, found=found, expected=SCHEMA_VERSION)

    def mark_current(self) -> bool:
        """Record that the store is now of this schema version, once a process of it
        wrote what an older release cannot read (``store/schema.py``): that release
        then refuses the store, saying so, instead of taking it for empty. Returns
        whether the store was of an older version."""
        found = self._version()
        if found == SCHEMA_VERSION:
            return False
        if found not in UPGRADES_FROM:
            raise StoreVersionError(data_dir=self.root, found=found, expected=SCHEMA_VERSION)
        with replacing(self.store_file) as tmp:
            tmp.write_text(json.dumps({"schema_version": SCHEMA_VERSION}) + "\n")
        return True

    def _version(self) -> object:
        try:
            found = json.loads(self.store_file.read_text())["schema_version"]
        except FileNotFoundError:
            raise ChoreoscopeError(
                f"no choreoscope store at {self.root}: run `choreoscope collect --data "
                f"{self.root}` (or `choreoscope demo`) to create one"
            ) from None
        except NotADirectoryError:
            raise ChoreoscopeError(
                f"{self.root} is a file, not a store directory: pass --data the directory "
                "`choreoscope collect` writes (default choreoscope-data)"
            ) from None
        except OSError as e:
            raise ChoreoscopeError(
                f"cannot read the store at {self.root} ({e.strerror}): check the path and "
                "its permissions"
            ) from None
        except (ValueError, KeyError) as e:
            raise StoreVersionError(
                data_dir=self.root, found="unreadable", expected=SCHEMA_VERSION
            ) from e
        return found

    def ensure_seeds(self) -> None:
        """Write the zero-row seed of every table that has none: all of them in a new
        store, and in an older one the tables added since (a view over a table with
        no file at all could not be created). A seed written before columns were added
        to its table is written again with them: read first, it gives the older
        segments those columns, as nulls. Any number of processes may race here: each
        writes under its own temp name, and the seeds are the same."""
        for table, schema in TABLES.items():
            seed = self.seed(table)
            if not _seed_has_columns(seed, schema):
                seed.parent.mkdir(parents=True, exist_ok=True)
                tmp = seed.with_name(f".{SEED_FILE}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
                pq.write_table(pa.Table.from_pylist([], schema=schema), tmp)
                tmp.replace(seed)

    def ensure(self) -> None:
        """Create the directory tree and seeds of a new store, or check an existing one."""
        if self.exists():
            self.check_version()
        self.root.mkdir(parents=True, exist_ok=True)
        self.ensure_seeds()
        self.findings.mkdir(exist_ok=True)
        if not self.exists():
            tmp = self.store_file.with_name("." + STORE_FILE + ".tmp")
            tmp.write_text(json.dumps({"schema_version": SCHEMA_VERSION}) + "\n")
            tmp.replace(self.store_file)


def _seed_has_columns(seed: Path, schema: pa.Schema) -> bool:
    """Whether ``seed`` exists and holds every column of ``schema`` (a damaged seed
    holds none: it is written again)."""
    try:
        names = set(pq.read_schema(seed).names)
    except (FileNotFoundError, pa.ArrowInvalid):
        return False
    return names.issuperset(schema.names)


_PARTITION = re.compile(r"date=(\d{4}-\d{2}-\d{2})[/\\]hour=(\d{2})")


def oldest_partition(files: Iterable[str]) -> dt.datetime | None:
    """The start of the oldest hour partition among ``files`` (None: none in one)."""
    hours = [start for f in files if (start := partition_start(f)) is not None]
    return min(hours, default=None)


def partition_start(file: str) -> dt.datetime | None:
    """The start of the hour partition ``file`` is in (None: it is in none)."""
    match = _PARTITION.search(file)
    if match is None:
        return None
    day, hour = match.groups()
    return dt.datetime.fromisoformat(f"{day}T{hour}:00:00+00:00")
