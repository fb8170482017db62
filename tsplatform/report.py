"""``tsplatform report``: a self-contained HTML report of the lake's series, with plotly figures.

The report reads the datasets the asset graph writes (whichever exist for the chosen days) and draws:

- an overview table per series: sampling period, missing and anomaly rates, chosen imputation and
  noise-processing methods, the champion's error beside seasonal naive;
- per series: raw readings against the cleaned series (imputed points and flagged anomalies marked),
  the decomposition (trend, seasonal components, residual), and the latest forecasts against the actuals;
- per position: a heatmap of the Pearson correlations of its series.

The file embeds plotly.js once, so it opens without any network. Datasets that are absent (an asset not
materialized yet) are skipped with a note in the report, never an error.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from tsplatform.lake import Lake
from tsplatform.timeseries.impute import IMPUTATION_METHODS

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: Most points drawn per trace: longer series are thinned evenly (the data stay in the lake).
MAX_POINTS = 5_000
#: Series drawn when ``--series`` is not given: the first ones by (position, type_name).
DEFAULT_MAX_SERIES = 24

DATASETS = (
    "validated_readings",
    "period_estimates",
    "regularized_readings",
    "denoised_readings",
    "decompositions",
    "series_profiles",
    "correlations",
    "forecasts",
    "forecast_accuracy",
)


@dataclass
class ReportData:
    """The datasets read for the report's days, as pandas frames (empty frames for absent datasets)."""

    days: list[dt.date]
    frames: dict[str, pd.DataFrame]
    missing: list[str] = field(default_factory=list)

    def __getitem__(self, dataset: str) -> pd.DataFrame:
        return self.frames.get(dataset, pd.DataFrame())


@dataclass(frozen=True)
class ReportSummary:
    """What a report holds: its path, days, series, positions and figures drawn."""

    path: Path
    days: list[dt.date]
    series: int
    positions: int
    figures: int
    missing_datasets: list[str]


def parse_days(spec: str | None, available: list[dt.date]) -> list[dt.date]:
    """Days of ``--days``: ``None`` = every available day; ``N`` = the last N available days;
    ``A..B`` (ISO dates, inclusive) = the available days in that range. Raises ``ValueError`` otherwise."""
    if spec is None or spec == "":
        return list(available)
    spec = spec.strip()
    if spec.isdigit():
        n = int(spec)
        if n <= 0:
            raise ValueError(f"--days {spec}: expected a positive number of days")
        return list(available[-n:])
    if ".." in spec:
        start_text, end_text = spec.split("..", 1)
        try:
            start, end = dt.date.fromisoformat(start_text), dt.date.fromisoformat(end_text)
        except ValueError as exc:
            raise ValueError(f"--days {spec!r}: expected N or YYYY-MM-DD..YYYY-MM-DD") from exc
        if end < start:
            raise ValueError(f"--days {spec!r}: the range ends before it starts")
        return [d for d in available if start <= d <= end]
    raise ValueError(f"--days {spec!r}: expected N or YYYY-MM-DD..YYYY-MM-DD")


def read_report_data(lake: Lake, days: list[dt.date], series: Iterable[str] | None = None) -> ReportData:
    """Read every report dataset for ``days``; ``series`` filters by series_id, ``position`` or
    ``position/type_name`` (exact text)."""
    wanted = set(series or ())
    frames: dict[str, pd.DataFrame] = {}
    missing: list[str] = []
    for dataset in DATASETS:
        table = lake.read_days(dataset, days) if days else None
        if table is None or table.num_rows == 0:
            missing.append(dataset)
            continue
        frame = table.to_pandas()
        if wanted and {"series_id", "position", "type_name"} <= set(frame.columns):
            label = frame["position"].astype(str) + "/" + frame["type_name"].astype(str)
            keep = frame["series_id"].isin(wanted) | frame["position"].isin(wanted) | label.isin(wanted)
            frame = frame[keep]
        elif wanted and "position" in frame.columns:
            frame = frame[frame["position"].isin(wanted | {w.split("/", 1)[0] for w in wanted})]
        for column in ("event_time", "issued_at"):
            if column in frame.columns:
                frame[column] = pd.to_datetime(frame[column], utc=True)
        frames[dataset] = frame.reset_index(drop=True)
    return ReportData(days=days, frames=frames, missing=missing)


def _thin(frame: pd.DataFrame, limit: int = MAX_POINTS) -> pd.DataFrame:
    if len(frame) <= limit:
        return frame
    step = -(-len(frame) // limit)
    return frame.iloc[::step]


def _series_list(data: ReportData, max_series: int) -> pd.DataFrame:
    """(series_id, position, type_name) of the series to draw, sorted by position then type."""
    keys = ["series_id", "position", "type_name"]
    parts = [
        data[d][keys] for d in ("validated_readings", "regularized_readings") if set(keys) <= set(data[d])
    ]
    if not parts:
        return pd.DataFrame(columns=keys)
    found = (
        pd.concat(parts).drop_duplicates("series_id").sort_values(["position", "type_name"], kind="stable")
    )
    return found.head(max_series).reset_index(drop=True)


def _of(frame: pd.DataFrame, sid: str) -> pd.DataFrame:
    if frame.empty or "series_id" not in frame:
        return frame.iloc[0:0]
    part = frame[frame["series_id"] == sid]
    return part.sort_values("event_time", kind="stable") if "event_time" in part else part


def _cleaning_figure(data: ReportData, sid: str, title: str) -> go.Figure:
    import plotly.graph_objects as go

    fig = go.Figure()
    raw = _thin(_of(data["validated_readings"], sid))
    if len(raw):
        fig.add_trace(
            go.Scattergl(
                x=raw["event_time"],
                y=raw["value"],
                mode="markers",
                name="raw readings",
                marker={"size": 3, "color": "#9aa0a6"},
            )
        )
    regular = _of(data["regularized_readings"], sid)
    denoised = _of(data["denoised_readings"], sid)
    cleaned = denoised if len(denoised) else regular
    if len(cleaned):
        thin = _thin(cleaned)
        fig.add_trace(
            go.Scattergl(
                x=thin["event_time"],
                y=thin["value"],
                mode="lines",
                name="cleaned",
                line={"color": "#1a73e8", "width": 1.5},
            )
        )
    if len(regular) and "is_imputed" in regular:
        imputed = _thin(regular[regular["is_imputed"].fillna(False).astype(bool)])
        if len(imputed):
            fig.add_trace(
                go.Scattergl(
                    x=imputed["event_time"],
                    y=imputed["value"],
                    mode="markers",
                    name="imputed",
                    marker={"symbol": "x", "size": 6, "color": "#f29900"},
                )
            )
    if len(denoised) and "is_anomaly" in denoised:
        flagged = denoised[denoised["is_anomaly"].fillna(False).astype(bool)]
        if len(flagged):
            y = flagged["value_raw"] if "value_raw" in flagged else flagged["value"]
            fig.add_trace(
                go.Scattergl(
                    x=flagged["event_time"],
                    y=y,
                    mode="markers",
                    name="anomaly",
                    marker={"size": 8, "color": "#d93025", "symbol": "circle-open"},
                )
            )
    fig.update_layout(
        title=f"{title}: raw vs cleaned", height=320, margin={"l": 50, "r": 20, "t": 40, "b": 30}
    )
    return fig


def _decomposition_figure(data: ReportData, sid: str, title: str) -> go.Figure | None:
    from plotly.subplots import make_subplots

    part = _of(data["decompositions"], sid)
    if part.empty:
        return None
    components = ["trend", *sorted(c for c in part.columns if c.startswith("seasonal")), "resid"]
    components = [c for c in components if c in part and part[c].notna().any()]
    if not components:
        return None
    fig = make_subplots(rows=len(components), cols=1, shared_xaxes=True, subplot_titles=components)
    thin = _thin(part)
    for row, column in enumerate(components, start=1):
        fig.add_scatter(
            x=thin["event_time"], y=thin[column], mode="lines", name=column, row=row, col=1, showlegend=False
        )
    fig.update_layout(
        title=f"{title}: decomposition",
        height=140 * len(components) + 60,
        margin={"l": 50, "r": 20, "t": 60, "b": 30},
    )
    return fig


def _forecast_figure(data: ReportData, sid: str, title: str) -> go.Figure | None:
    import plotly.graph_objects as go

    forecasts = _of(data["forecasts"], sid)
    if forecasts.empty:
        return None
    fig = go.Figure()
    actual = _of(data["denoised_readings"], sid)
    if actual.empty:
        actual = _of(data["validated_readings"], sid)
    for issued, group in list(forecasts.groupby("issued_at"))[-3:]:
        fig.add_scatter(
            x=group["event_time"],
            y=group["value"],
            mode="lines",
            name=f"forecast {pd.Timestamp(issued):%Y-%m-%d %H:%M}",
        )
    if len(actual):
        window = actual[actual["event_time"] >= forecasts["event_time"].min() - pd.Timedelta(days=2)]
        window = _thin(window)
        fig.add_scatter(
            x=window["event_time"],
            y=window["value"],
            mode="lines",
            name="actual",
            line={"color": "#202124", "width": 1},
        )
    model = str(forecasts["model"].iloc[-1]) if "model" in forecasts else ""
    fig.update_layout(
        title=f"{title}: forecasts ({html.escape(model)}) vs actuals",
        height=320,
        margin={"l": 50, "r": 20, "t": 40, "b": 30},
    )
    return fig


def _correlation_figure(frame: pd.DataFrame, position: str) -> go.Figure:
    import plotly.graph_objects as go

    latest = frame.groupby(["series_a", "series_b"], as_index=False)["pearson"].mean()
    names = sorted(set(latest["series_a"]) | set(latest["series_b"]))
    matrix = pd.DataFrame(1.0, index=names, columns=names)
    for row in latest.itertuples(index=False):
        matrix.loc[row.series_a, row.series_b] = row.pearson
        matrix.loc[row.series_b, row.series_a] = row.pearson
    fig = go.Figure(
        go.Heatmap(
            z=matrix.to_numpy(),
            x=names,
            y=names,
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            reversescale=True,
            colorbar={"title": "r"},
        )
    )
    fig.update_layout(
        title=f"{position}: Pearson correlation",
        height=360,
        width=480,
        margin={"l": 120, "r": 20, "t": 40, "b": 80},
    )
    return fig


def overview_table(data: ReportData, series: pd.DataFrame) -> pd.DataFrame:
    """One row per drawn series: period, missing and anomaly rates, methods, forecast errors."""
    rows = []
    for item in series.itertuples(index=False):
        sid = item.series_id
        row: dict[str, object] = {"position": item.position, "type": item.type_name}
        periods = _of(data["period_estimates"], sid)
        if len(periods) and "period_s" in periods:
            row["period"] = (
                _duration(periods["period_s"].dropna().iloc[-1]) if periods["period_s"].notna().any() else "—"
            )
        profiles = _of(data["series_profiles"], sid)
        for rate in ("missing_rate", "anomaly_rate"):
            if len(profiles) and rate in profiles:
                row[rate.replace("_", " ")] = f"{profiles[rate].mean():.1%}"
        regular = _of(data["regularized_readings"], sid)
        if len(regular) and "imputation_method" in regular:
            methods = regular["imputation_method"].dropna()
            chosen = methods[methods.isin(IMPUTATION_METHODS)]  # a method over "none" and "not needed"
            methods = chosen if len(chosen) else methods
            row["imputation"] = methods.mode().iloc[0] if len(methods) else "—"
        denoised = _of(data["denoised_readings"], sid)
        if len(denoised) and "processing" in denoised:
            row["processing"] = (
                denoised["processing"].dropna().mode().iloc[0]
                if denoised["processing"].notna().any()
                else "—"
            )
        accuracy = _of(data["forecast_accuracy"], sid)
        if len(accuracy) and {"mae", "naive_mae"} <= set(accuracy):
            row["forecast MAE"] = f"{accuracy['mae'].mean():.3g}"
            row["seasonal naive MAE"] = f"{accuracy['naive_mae'].mean():.3g}"
        rows.append(row)
    return pd.DataFrame(rows)


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#202124}
h1{margin-bottom:4px} .muted{color:#5f6368} table{border-collapse:collapse;margin:12px 0}
td,th{border:1px solid #dadce0;padding:4px 8px;text-align:left;font-size:13px} th{background:#f1f3f4}
section{margin:28px 0;border-top:1px solid #dadce0;padding-top:12px}
.grid{display:flex;flex-wrap:wrap;gap:12px}
"""


def write_report(
    lake: Lake,
    out: Path,
    *,
    days: str | None = None,
    series: Iterable[str] | None = None,
    max_series: int = DEFAULT_MAX_SERIES,
    progress: Callable[[int, int, str], None] | None = None,
) -> ReportSummary:
    """Write the HTML report to ``out`` and return what it holds.

    ``days``: see :func:`parse_days` (over the days of ``validated_readings``); ``series``: series ids,
    positions or ``position/type_name``; ``progress(done, total, label)`` is called per series.
    Raises ``ValueError`` when there is nothing to report (no day or no series).
    """
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    available = lake.days("validated_readings")
    chosen = parse_days(days, available)
    if not chosen:
        raise ValueError(
            "nothing to report: no validated_readings day in the lake"
            + (f" for --days {days}" if days else "")
        )
    data = read_report_data(lake, chosen, series)
    drawn = _series_list(data, max_series)
    if drawn.empty:
        raise ValueError("nothing to report: no series matches" + (f" {sorted(series)}" if series else ""))

    figures = 0
    parts: list[str] = []

    def embed(fig: go.Figure) -> str:
        nonlocal figures
        figures += 1
        return pio.to_html(fig, full_html=False, include_plotlyjs=False, config={"displaylogo": False})

    overview = overview_table(data, drawn)
    sections = []
    total = len(drawn)
    for done, item in enumerate(drawn.itertuples(index=False), start=1):
        title = f"{item.position} / {item.type_name}"
        blocks = [embed(_cleaning_figure(data, item.series_id, title))]
        for make in (_decomposition_figure, _forecast_figure):
            fig = make(data, item.series_id, title)
            if fig is not None:
                blocks.append(embed(fig))
        sections.append(f"<section><h3>{html.escape(title)}</h3>{''.join(blocks)}</section>")
        if progress is not None:
            progress(done, total, title)

    correlations = data["correlations"]
    heatmaps = []
    if len(correlations):
        for position, frame in correlations.groupby("position"):
            heatmaps.append(embed(_correlation_figure(frame, str(position))))

    span = f"{chosen[0]} … {chosen[-1]}" if len(chosen) > 1 else str(chosen[0])
    missing = (
        f"<p class='muted'>Not materialized for these days: {', '.join(data.missing)}.</p>"
        if data.missing
        else ""
    )
    parts.append(
        f"<h1>tsplatform report</h1><p class='muted'>{len(drawn)} series, days {span}, "
        f"written {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC</p>{missing}"
    )
    parts.append("<h2>Overview</h2>" + overview.to_html(index=False, escape=True, na_rep="—", border=0))
    if heatmaps:
        parts.append("<h2>Correlations per position</h2><div class='grid'>" + "".join(heatmaps) + "</div>")
    parts.append("<h2>Series</h2>" + "".join(sections))
    document = (
        "<!doctype html><html><head><meta charset='utf-8'><title>tsplatform report</title>"
        f"<style>{_STYLE}</style><script type='text/javascript'>{get_plotlyjs()}</script></head>"
        f"<body>{''.join(parts)}</body></html>"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document, encoding="utf-8")
    positions = int(drawn["position"].nunique())
    return ReportSummary(out, chosen, len(drawn), positions, figures, data.missing)


def register(app: object) -> None:
    """Add ``tsplatform report`` to the CLI."""
    import typer
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from tsplatform.errors import BadInput
    from tsplatform.settings import get_settings

    @app.command("report")  # type: ignore[attr-defined]
    def report(
        days: str = typer.Option(
            None, "--days", help="N (the last N days) or YYYY-MM-DD..YYYY-MM-DD; default all."
        ),
        series: list[str] = typer.Option(
            None, "--series", help="A series id, position or 'position/type_name' (repeatable)."
        ),
        out: Path = typer.Option(None, "--out", help="Output file (default <state>/reports/report.html)."),
        max_series: int = typer.Option(DEFAULT_MAX_SERIES, "--max-series", help="Most series drawn."),
    ) -> None:
        """Write a self-contained HTML report (raw vs cleaned, decompositions, forecasts, correlations)."""
        settings = get_settings()
        target = out or settings.state_path / "reports" / "report.html"
        console = Console(stderr=True)
        with Progress(
            TextColumn("report"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("", total=None)

            def step(done: int, total: int, label: str) -> None:
                bar.update(task, completed=done, total=total, description=label)

            try:
                summary = write_report(
                    Lake(settings.lake_uri),
                    target,
                    days=days,
                    series=series or None,
                    max_series=max_series,
                    progress=step,
                )
            except ValueError as exc:
                raise BadInput(f"{exc} (hint: run `make demo` or materialize the graph first)") from exc
        Console(soft_wrap=True).print(
            f"report: {summary.series} series, {summary.positions} positions, {summary.figures} figures, "
            f"days {summary.days[0]}..{summary.days[-1]} -> {summary.path}"
        )
