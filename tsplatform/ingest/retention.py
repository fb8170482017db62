"""Retention: delete day partitions older than their dataset's retention from metastore, lake and catalog.

A day partition ``D`` of dataset ``ds`` with retention ``n`` days (``settings.retention_days[ds]``) is
expired when ``D < today - n`` (UTC days): with ``n = 400`` and today 2026-11-26, 2025-10-21 and older
go, 2025-10-22 stays. Datasets without a retention are kept forever; ``n = 0`` keeps only today and
later.

:func:`plan_retention` is pure planning over the lake's partitions. :func:`apply_retention` removes each
planned partition in the order metastore (``ALTER TABLE ... DROP IF EXISTS PARTITION``), lake, catalog,
so no table or catalog entry ever points at deleted files for longer than one step. A failing step stops
that partition (the later steps are not run, so what remains is consistent) and the next partitions
continue. Every step, including dry-run ones, is appended as a JSON line to the log
(``<state>/logs/retention.jsonl``): ``{"at", "dry_run", "dataset", "day", "path", "step", "status"
[, "error"]}`` with ``step`` in metastore/lake/catalog/done and ``status`` in removed/absent/
would_remove/error. All steps are idempotent, and :func:`unfinished_items` reads the log back so the
next run finishes partitions a previous run left half done (e.g. lake files gone, catalog step failed).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import pyarrow.fs as pafs
import typer

from tsplatform.errors import ConfigError, ServiceUnavailable
from tsplatform.lake import Lake, check_dataset_name

Step = Literal["metastore", "lake", "catalog"]
STEPS: tuple[Step, ...] = ("metastore", "lake", "catalog")


class CatalogLike(Protocol):
    """What retention needs of the metadata catalog (``tsplatform.catalog.Catalog``)."""

    def forget_partition(self, dataset: str, day: dt.date) -> None:
        """Remove the partition's documents and per-series-day stats (no error when absent)."""
        ...


class MetastoreLike(Protocol):
    """What retention needs of the Hive metastore (the Spark/Hive wrapper)."""

    def drop_partition(self, dataset: str, day: dt.date) -> None:
        """``ALTER TABLE <dataset> DROP IF EXISTS PARTITION (...)`` (no error when absent)."""
        ...


@dataclass(frozen=True, order=True)
class RetentionItem:
    """One expired day partition and its lake path."""

    dataset: str
    day: dt.date
    path: str


@dataclass(frozen=True)
class RetentionOutcome:
    """What happened to one planned partition.

    ``done`` lists the steps that completed (dry run: the steps that would run); ``lake_existed`` is
    False when the lake had no such partition any more; ``error`` names the failing step and its cause.
    """

    item: RetentionItem
    done: tuple[Step, ...]
    lake_existed: bool
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class RetentionReport:
    """The outcomes of :func:`apply_retention`, in plan order."""

    dry_run: bool
    outcomes: list[RetentionOutcome] = field(default_factory=list)

    @property
    def removed(self) -> list[RetentionItem]:
        """Partitions removed everywhere (dry run: that would be)."""
        return [o.item for o in self.outcomes if o.ok]

    @property
    def failed(self) -> list[RetentionOutcome]:
        return [o for o in self.outcomes if not o.ok]


def expiry_cutoff(today: dt.date, days: int) -> dt.date:
    """The first day kept: partitions strictly before ``today - days`` are expired."""
    return today - dt.timedelta(days=days)


def plan_retention(lake: Lake, retention_days: Mapping[str, int], today: dt.date) -> list[RetentionItem]:
    """Expired day partitions of the datasets in ``retention_days``, sorted by dataset then day.

    Raises :class:`ConfigError` for an invalid dataset name or a negative retention. Datasets that are
    not listed are never planned.
    """
    plan: list[RetentionItem] = []
    for dataset, days in sorted(retention_days.items()):
        try:
            check_dataset_name(dataset)
        except ValueError as exc:
            raise ConfigError(f"retention: {exc}", setting="TSPLATFORM_RETENTION_DAYS") from exc
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise ConfigError(
                f"retention: days for {dataset!r} must be an integer >= 0, got {days!r}",
                setting="TSPLATFORM_RETENTION_DAYS",
            )
        cutoff = expiry_cutoff(today, days)
        plan += [
            RetentionItem(dataset, d, lake.partition_path(dataset, d))
            for d in lake.days(dataset)
            if d < cutoff
        ]
    return plan


def _append_log(log_path: Path | None, record: Mapping[str, Any]) -> None:
    if log_path is None:
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
    with log_path.open("a", encoding="utf-8") as log:
        log.write(line)
        log.flush()
        os.fsync(log.fileno())


def record_base(item: RetentionItem, dry_run: bool) -> dict[str, Any]:
    """The fields every log line of ``item`` carries."""
    return {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "dry_run": dry_run,
        "dataset": item.dataset,
        "day": item.day.isoformat(),
        "path": item.path,
    }


def apply_retention(
    plan: Iterable[RetentionItem],
    *,
    lake: Lake,
    catalog: CatalogLike | None = None,
    metastore: MetastoreLike | None = None,
    dry_run: bool,
    log_path: Path | None,
) -> RetentionReport:
    """Remove the planned partitions (metastore, lake, catalog) or, ``dry_run``, only report and log them.

    ``catalog`` / ``metastore`` may be ``None`` (that step is skipped and not logged). Exceptions of one
    partition are caught, logged and reported; the next partition continues.
    """
    report = RetentionReport(dry_run=dry_run)
    for item in plan:
        done: list[Step] = []
        error: str | None = None
        lake_existed = lake.fs.get_file_info(item.path).type != pafs.FileType.NotFound
        for step in STEPS:
            target = {"metastore": metastore, "lake": lake, "catalog": catalog}[step]
            if target is None:
                continue
            record = {**record_base(item, dry_run), "step": step}
            try:
                if dry_run:
                    status = "would_remove"
                elif step == "metastore":
                    metastore.drop_partition(item.dataset, item.day)  # type: ignore[union-attr]
                    status = "removed"
                elif step == "lake":
                    status = "removed" if lake.delete_partition(item.dataset, item.day) else "absent"
                else:
                    catalog.forget_partition(item.dataset, item.day)  # type: ignore[union-attr]
                    status = "removed"
            except Exception as exc:  # one partition's failure must not stop the others
                error = f"{step}: {type(exc).__name__}: {' '.join(str(exc).split())}"
                _append_log(log_path, {**record, "status": "error", "error": error})
                break
            _append_log(log_path, {**record, "status": status})
            done.append(step)
        if error is None:
            _append_log(
                log_path,
                {
                    **record_base(item, dry_run),
                    "step": "done",
                    "status": "would_remove" if dry_run else "removed",
                },
            )
        report.outcomes.append(RetentionOutcome(item, tuple(done), lake_existed, error))
    return report


def unfinished_items(log_path: Path, lake: Lake) -> list[RetentionItem]:
    """Partitions a previous (non-dry) run started but did not finish: re-plan them to finish them.

    A partition is finished when its last log line is its ``done`` line. Its lake files may be gone
    already (e.g. the catalog step failed), so :func:`plan_retention` alone would not find it again.
    Unparseable log lines are ignored.
    """
    if not log_path.is_file():
        return []
    last_step: dict[tuple[str, str], str] = {}
    with log_path.open(encoding="utf-8") as log:
        for line in log:
            try:
                record = json.loads(line)
                if not record.get("dry_run"):
                    last_step[(str(record["dataset"]), str(record["day"]))] = str(record["step"])
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
    items = []
    for (dataset, day), step in sorted(last_step.items()):
        if step == "done":
            continue
        try:
            parsed = dt.date.fromisoformat(day)
            items.append(RetentionItem(dataset, parsed, lake.partition_path(dataset, parsed)))
        except ValueError:
            continue
    return items


def merge_plans(*plans: Iterable[RetentionItem]) -> list[RetentionItem]:
    """Union of plans without duplicates, sorted by dataset then day."""
    return sorted({item for plan in plans for item in plan})


# --- command line --------------------------------------------------------------------------------
def _open_catalog() -> Any:
    """The metadata catalog (``tsplatform.catalog.Catalog``) of the current settings."""
    from tsplatform.catalog import Catalog
    from tsplatform.settings import get_settings

    settings = get_settings()
    return Catalog(settings.mongo_uri, settings.mongo_db)


def _open_metastore() -> MetastoreLike:
    """The Hive metastore of a Spark session built from the settings (``tsplatform.resources.spark``)."""
    from tsplatform.hive import HiveMetastore
    from tsplatform.resources.spark import hive_session_builder

    builder = hive_session_builder()  # a remote server that does not answer fails here, at once
    try:
        return HiveMetastore(builder.getOrCreate())
    except Exception as exc:  # py4j / JVM start-up errors: make them one line
        cause = " ".join(str(exc).split())[:300]
        raise ServiceUnavailable(
            f"retention --hive: cannot start Spark with the Hive metastore ({type(exc).__name__}: {cause}); "
            "with the embedded Derby metastore only one process may use it at a time",
            setting="TSPLATFORM_SPARK_CONF",
        ) from exc


def retention_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only report and log what would be removed."),
    today: str | None = typer.Option(None, "--today", help="YYYY-MM-DD (UTC); default: today."),
    no_catalog: bool = typer.Option(False, "--no-catalog", help="Leave the MongoDB catalog alone."),
    hive: bool = typer.Option(
        False, "--hive", help="Also drop the partitions from the Hive metastore (starts a Spark session)."
    ),
) -> None:
    """Delete day partitions older than each dataset's retention (lake, catalog, Hive with --hive)."""
    from rich.console import Console
    from rich.table import Table

    from tsplatform.settings import get_settings

    settings = get_settings()
    try:
        day = dt.date.fromisoformat(today) if today else dt.datetime.now(dt.UTC).date()
    except ValueError as exc:
        raise ConfigError(f"retention: --today {today!r} is not a YYYY-MM-DD date") from exc
    lake = Lake(settings.lake_uri)
    log_path = settings.state_path / "logs" / "retention.jsonl"
    plan = merge_plans(plan_retention(lake, settings.retention_days, day), unfinished_items(log_path, lake))
    catalog = None if no_catalog else _open_catalog()
    metastore = _open_metastore() if hive and not dry_run else None
    try:
        report = apply_retention(
            plan, lake=lake, catalog=catalog, metastore=metastore, dry_run=dry_run, log_path=log_path
        )
    finally:
        if catalog is not None:
            catalog.close()
    table = Table(title=f"retention {'(dry run) ' if dry_run else ''}as of {day.isoformat()}")
    for column in ("dataset", "day", "steps", "result"):
        table.add_column(column)
    for outcome in report.outcomes:
        result = outcome.error or ("would remove" if dry_run else "removed")
        table.add_row(
            outcome.item.dataset, outcome.item.day.isoformat(), ", ".join(outcome.done) or "-", result
        )
    console = Console()
    console.print(table)
    verb = "would be removed" if dry_run else "removed"
    console.print(
        f"{len(report.removed)} partitions {verb}, {len(report.failed)} failed"
        f"{'' if catalog is not None else ' (catalog untouched: --no-catalog)'}"
        f"{'' if hive else ' (Hive metastore untouched: pass --hive)'}; log: {log_path}"
    )
    if report.failed:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add ``retention`` to the ``tsplatform`` app."""
    app.command("retention")(retention_command)
