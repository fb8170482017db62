"""Where a ``tsplatform sql-source`` stands, kept durably in its state file.

:class:`Position` (the last time published, the highest id read and the id gaps still awaited),
:func:`state_file_path` (``<state>/sql_source/<slug>-<digest>.json``), :func:`load_position` and
:func:`save_position` (write aside, ``fsync``, rename).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tsplatform.errors import ConfigError
from tsplatform.ingest.sql_source_config import SourceConfig

STATE_VERSION = 2
_SLUG = re.compile(r"[^a-z0-9]+")

TimeKind = Literal["timestamptz", "timestamp", "epoch_ms"]
#: A range of ids not seen yet, ``(first id, last id, database time first seen in epoch ms)``.
Gap = tuple[int, int, int]


@dataclass(frozen=True)
class Position:
    """Where the source stands.

    ``last_time`` is the time of the last published row (``datetime`` or epoch ms ``int``): the position of
    timestamp mode, informative in incrementing mode. ``last_id`` is the highest id read (incrementing mode;
    ``None`` otherwise) and ``gaps`` the id ranges below it not seen yet (:data:`Gap`).
    """

    last_time: dt.datetime | int
    last_id: int | None
    time_kind: TimeKind
    gaps: tuple[Gap, ...] = ()


def state_file_path(state_dir: Path, source_name: str) -> Path:
    """``<state>/sql_source/<slug>-<16 hex>.json``: slug for humans, SHA-256 of the name for identity."""
    digest = hashlib.sha256(source_name.encode("utf-8")).hexdigest()[:16]
    slug = _SLUG.sub("_", source_name.lower()).strip("_")[:48]
    return state_dir / "sql_source" / f"{slug}-{digest}.json"


def encode_time(value: dt.datetime | int) -> str | int:
    return value if isinstance(value, int) else value.isoformat()


def _decode_time(value: Any, kind: TimeKind) -> dt.datetime | int:
    if kind == "epoch_ms":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"expected epoch ms integer, got {value!r}")
        return value
    parsed = dt.datetime.fromisoformat(str(value))
    if (kind == "timestamptz") != (parsed.tzinfo is not None):
        raise ValueError(f"time {value!r} does not match column kind {kind}")
    return parsed


def _decode_gaps(raw: Any) -> tuple[Gap, ...]:
    gaps = []
    for item in raw or ():
        lo, hi, seen = (int(x) for x in item)
        if lo > hi:
            raise ValueError(f"gap {item!r} is empty")
        gaps.append((lo, hi, seen))
    return tuple(gaps)


def load_position(path: Path, config: SourceConfig) -> Position | None:
    """The saved position, ``None`` when there is none yet. A file of another source or mode is an error.

    Version-1 files (no gaps) are read too: their id becomes the high id, with no gaps.
    """
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if state.get("version") not in (1, STATE_VERSION):
            raise ValueError(f"unsupported version {state.get('version')!r}")
        for key, expected in (
            ("source", config.source_name),
            ("time_column", config.time_column),
            ("id_column", config.id_column),
        ):
            if state.get(key) != expected:
                raise ConfigError(
                    f"sql-source: position file {path} was written with {key}={state.get(key)!r}, not "
                    f"{expected!r}; use the same options or pass another --name"
                )
        kind: TimeKind = state["time_kind"]
        last_id = state.get("last_id")
        if last_id is not None and not isinstance(last_id, int):
            raise ValueError(f"last_id {last_id!r} is not an integer")
        return Position(
            _decode_time(state["last_time"], kind), last_id, kind, _decode_gaps(state.get("gaps"))
        )
    except ConfigError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"sql-source: position file {path} is unreadable ({exc}); fix or remove it"
        ) from exc


def save_position(path: Path, config: SourceConfig, position: Position, published_total: int) -> None:
    """Durably replace the position file: write a temp file, ``fsync``, rename, ``fsync`` the directory."""
    state = {
        "version": STATE_VERSION,
        "source": config.source_name,
        "schema": config.schema,
        "table": config.table,
        "topic": config.resolved_topic,
        "time_column": config.time_column,
        "id_column": config.id_column,
        "time_kind": position.time_kind,
        "last_time": encode_time(position.last_time),
        "last_id": position.last_id,
        "gaps": [list(g) for g in position.gaps],
        "published_total": published_total,
        "updated_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8") as out:
            json.dump(state, out, ensure_ascii=False, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(
            f"sql-source: cannot save the position to {path} ({exc.strerror or exc}); the last batch was "
            "published and will be published again on restart",
            setting="TSPLATFORM_STATE_DIR",
        ) from exc
