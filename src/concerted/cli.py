"""The ``concerted`` command: parse, call one library function, print.

Exit codes: 0 done; 1 the input or the case could not be used (a concerted error,
printed as one message); 2 the command line itself was wrong.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from concerted import __version__, adapters, engines, fastpath, simulate
from concerted.actions import ACTION_KINDS
from concerted.adapters.base import AdapterOptions
from concerted.errors import ConcertedError
from concerted.ingest import IngestOptions, SourceReport, ingest, open_case
from concerted.privacy import Pseudonymiser
from concerted.schema import CONTRACTS
from concerted.store import Store

__all__ = ["main", "cli"]


class _Lazy:
    """A module imported on its first use: the analysis, its report and their
    libraries take seconds to import, which a command that does not use them (``coaction
    --compat``, ``formats``, ``--help``) does not pay."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)


if TYPE_CHECKING:
    import pyarrow.parquet as pq

    from concerted import analysis, config, detectors, evaluate
else:
    pq = _Lazy("pyarrow.parquet")
    analysis = _Lazy("concerted.analysis")
    config = _Lazy("concerted.config")
    detectors = _Lazy("concerted.detectors")
    evaluate = _Lazy("concerted.evaluate")

F = TypeVar("F", bound=Callable[..., Any])

# Long lines (paths, kinds) are left to the terminal to wrap, not cut up by rich.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _pairs(option: str, values: Sequence[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, target = value.partition("=")
        if not sep or not key.strip() or not target.strip():
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=option)
        pairs[key.strip()] = target.strip()
    return pairs


def store_options(func: F) -> F:
    func = click.option(
        "--memory-limit",
        metavar="SIZE",
        help="DuckDB memory limit, e.g. 4GB (default: half this machine's memory, or "
        "$CONCERTED_MEMORY_LIMIT). Work beyond it spills to disk.",
    )(func)
    func = click.option(
        "--temp-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Where DuckDB spills to disk (default: CASE.duckdb.tmp beside the case).",
    )(func)
    return func


def engine_options(func: F) -> F:
    func = click.option(
        "--spark-master",
        metavar="URL",
        help="With --engine spark: the Spark master (local[N], spark://HOST:PORT, yarn, "
        "k8s://...; default $CONCERTED_SPARK_MASTER, else local[*]).",
    )(func)
    func = click.option(
        "--engine",
        default=engines.DEFAULT,
        show_default=True,
        type=click.Choice(engines.available()),
        help="What runs the co-action pairing and the significance test's sums: DuckDB, "
        "or Apache Spark (pip install 'concerted[spark]' and Java 17).",
    )(func)
    return func


def _use_engine(engine: str, spark_master: str | None) -> str:
    """Check ``engine`` before any work, and pass --spark-master on to it."""
    engines.get(engine)
    if spark_master:
        os.environ["CONCERTED_SPARK_MASTER"] = spark_master
    return engine


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str], None]]:
    if not enabled:
        yield lambda _: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None)
        yield lambda message: bar.update(task, description=message)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="concerted")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (never message text).")
def cli(verbose: bool) -> None:
    """Find coordinated inauthentic behaviour and mass-reporting brigades, with evidence."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@cli.command("ingest")
@click.argument("case", type=click.Path(dir_okay=False, path_type=Path))
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "-f",
    "--format",
    "format_",
    required=True,
    metavar="NAME",
    callback=lambda _ctx, _param, value: _known_format(value),
    help="Input format; `concerted formats` lists them.",
)
@click.option(
    "--table",
    type=click.Choice(list(CONTRACTS)),
    help="Contract table the files fill (generic and reports formats).",
)
@click.option(
    "--map",
    "mapping",
    multiple=True,
    metavar="COLUMN=SOURCE",
    help="Take contract COLUMN from the file's SOURCE column (repeatable).",
)
@click.option(
    "--platform",
    metavar="NAME",
    help="Platform of rows whose file does not say (facebook, instagram, ...).",
)
@click.option(
    "--timezone",
    metavar="ZONE",
    help="IANA zone of timestamps written without an offset, e.g. UTC or "
    "Asia/Karachi. Required when a file has such timestamps.",
)
@click.option(
    "--delimiter",
    metavar="CHAR",
    help="Field delimiter of CSV files (default: sniffed; tab for .tsv).",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="An option of the format's adapter (see `concerted formats`).",
)
@click.option(
    "--on-error",
    type=click.Choice(["raise", "quarantine"]),
    default="raise",
    show_default=True,
    help="On a bad row: stop naming file, row and column, or set the row aside "
    "in the case's quarantine table, count it and go on.",
)
@click.option(
    "--pseudonymise-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Replace every identifier by its keyed hash (HMAC-SHA256) under the key "
    "in this file; the same key must be used for every file of the case.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@store_options
def ingest_command(
    case: Path,
    files: tuple[Path, ...],
    format_: str,
    table: str | None,
    mapping: tuple[str, ...],
    platform: str | None,
    timezone: str | None,
    delimiter: str | None,
    settings: tuple[str, ...],
    on_error: str,
    pseudonymise_key_file: Path | None,
    as_json: bool,
    memory_limit: str | None,
    temp_dir: Path | None,
) -> None:
    """Load FILES into the case file CASE (created if new).

    Ingesting a file whose content is already in the case adds nothing.
    """
    options = IngestOptions(
        format=format_,
        adapter=AdapterOptions(
            table=table,
            mapping=_pairs("--map", mapping),
            platform=platform,
            delimiter=delimiter,
            settings=_pairs("--set", settings),
        ),
        timezone=timezone,
        on_error="quarantine" if on_error == "quarantine" else "raise",
    )
    adapters.get(format_)  # an unknown format fails before the case is touched
    pseudonymiser = (
        Pseudonymiser.from_file(pseudonymise_key_file) if pseudonymise_key_file else None
    )
    with (
        Store(case, memory_limit=memory_limit, temp_directory=temp_dir) as store,
        _progress(not as_json and err.is_terminal) as say,
    ):
        reports: list[SourceReport] = []
        for file in files:
            # Each file is its own transaction: say what it added before the next one.
            (report,) = ingest(store, [file], options, pseudonymiser=pseudonymiser, progress=say)
            reports.append(report)
            if not as_json:
                _print_ingest([report], case)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in reports], indent=2))


def _print_ingest(reports: list[SourceReport], case: Path) -> None:
    for r in reports:
        name = Path(r.path).name
        if r.status == "already ingested":
            out.print(f"{name}: already in the case (sha256 {r.sha256[:12]}); nothing added")
            continue
        added = ", ".join(f"{n:,} {t}" for t, n in r.rows_added.items()) or "nothing"
        out.print(
            f"{name}: {r.rows_read:,} rows read; added {added}; "
            f"{r.actions_added:,} actions; {r.seconds:.1f} s"
        )
        for note in r.notes:
            out.print(f"  {escape(note)}")
        if r.rows_duplicate:
            out.print(
                f"  {r.rows_duplicate:,} rows already in the case (the same key; for actions, "
                "the same row), not added twice"
            )
        if r.rows_set_aside:
            every = " (every row)" if r.rows_set_aside >= r.rows_read > 0 else ""
            out.print(
                f"  [yellow]{r.rows_set_aside:,} rows set aside{every}[/] in the quarantine "
                f"table; the reasons: concerted info {escape(str(case))}"
            )


@cli.command("info")
@click.argument("case", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def info_command(case: Path, as_json: bool) -> None:
    """What the case file CASE holds: rows per table, platform and kind; time spans;
    sources; rows set aside."""
    with Store(case, read_only=True) as store:
        info = store.info()
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    head = f"[bold]{escape(str(case))}[/]" + (" (pseudonymised)" if info["pseudonymised"] else "")
    out.print(head)
    for name, t in info["tables"].items():
        line = f"  {name:<9}{t['rows']:>12,}"
        if t.get("by_platform"):
            line += f"   {_counts(t['by_platform'])}"
        out.print(line, highlight=False)
        if t.get("by_kind"):
            out.print(f"{'':23}kinds: {_counts(t['by_kind'])}", highlight=False)
        span = t.get("span") or {}
        if span.get("first"):
            out.print(f"{'':23}{span['first']} to {span['last']}", highlight=False)
    out.print("[bold]sources[/]")
    for s in info["sources"]:
        out.print(
            f"  {s['source_id']:>3}  {escape(s['path'])}  ({s['format']}, sha256 "
            f"{s['sha256'][:12]}, {s['ingested_at']})\n"
            f"       {s['rows_read']:,} rows read, {s['rows_duplicate']:,} duplicates, "
            f"{s['rows_set_aside']:,} set aside, {s['actions_added']:,} actions",
            highlight=False,
        )
    if info["quarantine"]:
        out.print("[bold]rows set aside[/] (table quarantine)")
        for q in info["quarantine"]:
            out.print(
                f"  {q['rows']:>8,}  {q['table'] or 'unreadable'}: {escape(q['reason'])}",
                highlight=False,
            )


def _counts(counts: dict[str, int]) -> str:
    return " · ".join(f"{k} {v:,}" for k, v in counts.items())


@cli.command("formats")
def formats_command() -> None:
    """The input formats `concerted ingest --format` reads."""
    table = Table()
    table.add_column("format")
    table.add_column("what it reads")
    for name in sorted(adapters.available()):
        table.add_row(name, adapters.get(name).summary)
    out.print(table)


@cli.command("detectors")
def detectors_command() -> None:
    """The detectors registered (built in, and from other packages' entry points), with
    what each is for: `network` and `tested` layers, `corroborating` signals, `report`
    signals of the brigade stage (with their default weight in a brigade's score)."""
    table = Table()
    for column in ("detector", "family", "weight", "from", "defined in"):
        table.add_column(column)
    builtin = set(detectors.builtin())
    for name, where in sorted(detectors.available().items()):
        family = detectors.family(name)
        weight = f"{detectors.weight(name):g}" if family == "report" else ""
        source = "built in" if name in builtin else "plugin"
        table.add_row(name, family, weight, source, where)
    out.print(table)


@cli.command("simulate")
@click.option(
    "--scenario",
    "name",
    required=True,
    type=click.Choice(list(simulate.SCENARIOS)),
    help="What to plant in the organic population (organic plants nothing).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
@click.option(
    "--scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Multiply every count (accounts, assets, members, targets, cascades).",
)
@click.option(
    "--difficulty",
    type=click.Choice(simulate.DIFFICULTIES),
    default="standard",
    show_default=True,
    help="Preset jitter, camouflage, edits and reporting habits.",
)
@click.option(
    "--set",
    "knobs",
    multiple=True,
    metavar="PART.KNOB=VALUE",
    help="Set one knob, e.g. network.jitter=300 or brigade.automated_share=0.3 "
    "(repeatable; --dry-run lists them).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write accounts, posts, reports, roles and truth to.",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(simulate.FORMATS),
    default="parquet",
    show_default=True,
    help="One Parquet file per table, or one directory of Parquet files per table "
    "(parquet-dataset: what `analyze --engine spark` reads from a data lake).",
)
@click.option(
    "--rows-per-file",
    type=click.IntRange(min=1),
    default=simulate.ROWS_PER_FILE,
    show_default=True,
    help="With --format parquet-dataset: the most rows in one file.",
)
@click.option("--overwrite", is_flag=True, help="Replace files a former run left in --out.")
@click.option("--dry-run", is_flag=True, help="Print the scenario's knobs as JSON and stop.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def simulate_command(
    name: str,
    seed: int,
    scale: float,
    difficulty: str,
    knobs: tuple[str, ...],
    out_dir: Path | None,
    format_: str,
    rows_per_file: int,
    overwrite: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Simulate a platform with planted operations, and the truth about them."""
    sc = simulate.scenario(name, difficulty=difficulty, scale=scale, knobs=_pairs("--set", knobs))
    if dry_run:
        click.echo(json.dumps(sc.knobs(), indent=2))
        return
    if out_dir is None:
        raise click.UsageError("--out is required (unless --dry-run)")
    with _progress(not as_json and err.is_terminal) as say:
        summary = simulate.simulate(
            sc,
            seed=seed,
            out=out_dir,
            overwrite=overwrite,
            progress=say,
            format=format_,
            rows_per_file=rows_per_file,
        )
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
        return
    rows = " · ".join(f"{t} {n:,}" for t, n in summary.rows.items())
    out.print(
        f"[bold]{escape(name)}[/] seed {seed} scale {scale:g} ({difficulty}) in "
        f"{summary.seconds:.1f} s: {rows}; {summary.actions:,} actions\n"
        f"written to {escape(str(summary.out))}",
        highlight=False,
    )


@cli.command("evaluate")
@click.argument("result", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--truth",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The directory concerted simulate wrote (truth.parquet, truth.json).",
)
def evaluate_command(result: Path, truth: Path) -> None:
    """Precision, recall and F1 of the result in RESULT against the truth, as JSON."""
    click.echo(json.dumps(evaluate.evaluate(result, truth), indent=2))


_INPUTS = click.argument(
    "inputs",
    metavar="INPUT_OR_CASE...",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, path_type=Path),
)
_OUT = click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write the results to (created if new).",
)


def _input_options(func: F) -> F:
    func = click.option(
        "--case",
        "case_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Case file to build from data files, a file already in it adding nothing "
        "(default: analyze OUT/case.duckdb; coaction in memory).",
    )(func)
    func = click.option(
        "--format",
        "-f",
        "format_",
        default="generic",
        show_default=True,
        callback=lambda _ctx, _param, value: _known_format(value),
        help="Format of the data files (see `concerted formats`); ignored for a case file.",
    )(func)
    func = click.option(
        "--platform",
        help="Platform of rows whose file has no platform column (else reports and roles "
        "take their account's platform in the case).",
    )(func)
    return func


def _open(
    inputs: tuple[Path, ...],
    case_path: Path | None,
    format_: str,
    memory_limit: str | None,
    temp_dir: Path | None,
    say: Callable[[str], None],
    platform: str | None = None,
) -> Store:
    store, reports = open_case(
        inputs,
        case_path,
        IngestOptions(format=format_, adapter=AdapterOptions(platform=platform)),
        memory_limit=memory_limit,
        temp_directory=temp_dir,
        progress=say,
    )
    for r in reports:
        for note in r.notes:
            err.print(f"{escape(Path(r.path).name)}: {escape(note)}")
        if r.rows_set_aside:
            err.print(
                f"[yellow]{escape(Path(r.path).name)}: {r.rows_set_aside:,} rows set aside[/]"
            )
    return store


def _inputs_or_uri(
    _ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[Path | str, ...]:
    """Local paths, which must exist, and (for --engine spark) a dataset's URI, kept as
    written (``s3a://bucket/lake``)."""
    found: list[Path | str] = []
    for text in values:
        scheme, sep, _ = text.partition("://")
        if sep and scheme.isidentifier() and scheme != "file":
            found.append(text)
            continue
        path = Path(text.removeprefix("file://"))
        if not path.exists():
            raise click.BadParameter(f"Path {text!r} does not exist.", param=param)
        found.append(path)
    return tuple(found)


def _dataset(inputs: tuple[Path | str, ...], engine: str) -> str | None:
    """The one input when it is a Parquet dataset (a directory per table, local or at a
    URI), which --engine spark reads; None for files and case files."""
    from concerted.engines.spark_tables import is_dataset

    found = [str(p) for p in inputs if isinstance(p, str) or is_dataset(p)]
    if not found:
        return None
    if engine != "spark":
        raise click.UsageError(
            f"{found[0]} is a Parquet dataset (a directory of files per table): "
            "analyze it with --engine spark"
        )
    if len(inputs) > 1:
        raise click.UsageError("give one Parquet dataset, on its own")
    return found[0]


@cli.command("analyze")
@click.argument(
    "inputs",
    metavar="INPUT_OR_CASE...",
    nargs=-1,
    required=True,
    type=click.Path(path_type=str),
    callback=_inputs_or_uri,
)
@_OUT
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file of settings (see docs/analysis.md); defaults for what it leaves out.",
)
@_input_options
@click.option("--overwrite", is_flag=True, help="Replace results a former run left in --out.")
@click.option("--hide-text", is_flag=True, help="Leave message texts out of report.html.")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON.")
@engine_options
@store_options
def analyze_command(
    inputs: tuple[Path | str, ...],
    out: Path,
    config_file: Path | None,
    case_path: Path | None,
    format_: str,
    platform: str | None,
    overwrite: bool,
    hide_text: bool,
    as_json: bool,
    engine: str,
    spark_master: str | None,
    memory_limit: str | None,
    temp_dir: Path | None,
) -> None:
    """Find coordinated networks, and brigades where there are reports, in
    INPUT_OR_CASE: one case file, or data files and directories of them (as `concerted
    simulate` writes), ingested into a case first; with --engine spark, also a Parquet
    dataset (a directory of files per table, a local path or a URI Spark reads, as
    `concerted simulate --format parquet-dataset` writes), read and derived on Spark.

    Writes report.html, the findings and their evidence (Parquet), network.graphml,
    network.gexf, summary.json and run.json to --out.
    """
    settings = config.load(config_file)
    engine = _use_engine(engine, spark_master)
    with _progress(not as_json and err.is_terminal) as say:
        case = case_path or out / "case.duckdb"
        lake = _dataset(inputs, engine)
        if lake is not None:
            from concerted.engines.spark_tables import describe, open_dataset

            store, loaded = open_dataset(
                lake, case, memory_limit=memory_limit, temp_directory=temp_dir, progress=say
            )
            for line in describe(loaded):
                err.print(escape(line), highlight=False)
        else:
            local = tuple(Path(p) for p in inputs)
            store = _open(local, case, format_, memory_limit, temp_dir, say, platform)
        with store:
            run = analysis.analyze(
                store,
                out,
                settings,
                overwrite=overwrite,
                hide_text=hide_text,
                progress=say,
                engine=engine,
            )
    if as_json:
        click.echo(json.dumps(run, indent=2, default=str))
        return
    _print_campaigns(out, run)


def _print_campaigns(out_dir: Path, run: dict[str, Any]) -> None:
    counts = run["counts"]
    out.print(
        f"{counts['actions']:,} actions; {counts['pairs']:,} account pairs co-acted, "
        f"{counts['significant_pairs']:,} beyond chance "
        f"(false-discovery rate {run['settings']['significance']['fdr']})"
    )
    campaigns = pq.read_table(out_dir / "campaigns.parquet").to_pylist()
    networks = [c for c in campaigns if c["flagged"] and c["kind"] == "network"]
    if not networks:
        out.print(f"no coordinated network found: {_why_none(run)}")
    else:
        noun = "network" if len(networks) == 1 else "networks"
        table = Table(title=f"{len(networks)} coordinated {noun}")
        for column in ("campaign", "accounts", "ties", "assets", "active", "signals"):
            table.add_column(column)
        for c in networks:
            summary = json.loads(c["summary"])
            assets = "; ".join(
                f"{platform}: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
                for platform, kinds in sorted(summary.get("assets", {}).items())
            )
            signals = ", ".join(s.removeprefix("co_action:") for s in c["signals"] or [])
            ties = summary.get("ties")
            table.add_row(
                c["campaign_id"],
                f"{c['accounts']:,}",
                f"{ties:,}" if isinstance(ties, int) else "",
                assets,
                _active(c),
                signals,
            )
        out.print(table)
    if counts.get("reports"):
        brigades = [c for c in campaigns if c["flagged"] and c["kind"] == "brigade"]
        if not brigades:
            out.print(f"{counts['reports']:,} reports; no brigade found")
        else:
            noun = "brigade" if len(brigades) == 1 else "brigades"
            table = Table(title=f"{len(brigades)} {noun} among {counts['reports']:,} reports")
            for column in ("campaign", "reporters", "targets", "reports", "active", "signals"):
                table.add_column(column)
            for c in brigades:
                table.add_row(
                    c["campaign_id"],
                    f"{c['accounts'] or 0:,}",
                    f"{c['targets'] or 0:,}",
                    f"{c['reports'] or 0:,}",
                    _active(c),
                    ", ".join(c["signals"] or []),
                )
            out.print(table)
            out.print(
                f"{counts.get('reports_flagged', 0):,} reports flagged as coordinated; "
                f"{counts.get('protected_targets', 0):,} targets to protect (protected.parquet)"
            )
    if (out_dir / "report.html").exists():
        out.print(f"report: {escape(str(out_dir / 'report.html'))}")
    seconds = sum(run["seconds"].values())
    out.print(f"results in {escape(str(out_dir))} ({seconds:.1f} s)")


def _active(campaign: dict[str, Any]) -> str:
    first, last = campaign["first_ts"], campaign["last_ts"]
    return f"{first:%Y-%m-%d} to {last:%Y-%m-%d}" if first and last else ""


@cli.command("coaction")
@_INPUTS
@_OUT
@_input_options
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(ACTION_KINDS),
    help="Action kind to pair on; repeat for several (default: repost with --compat "
    "qut; every kind in the data with --compat coortweet; the analysis kinds otherwise).",
)
@click.option(
    "--window",
    required=True,
    type=click.FloatRange(min=0),
    help="Seconds between two actions for them to pair (inclusive).",
)
@click.option(
    "--compat",
    type=click.Choice(["qut", "coortweet"]),
    help="Write a peer's output: the coordination-network-toolkit's edges (qut) or "
    "CooRTweet's pairs and network (coortweet).",
)
@click.option(
    "--min-weight",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Least weight for an edge to be written (distinct objects; qut: messages).",
)
@click.option(
    "--min-participation",
    default=2,
    show_default=True,
    type=click.IntRange(min=0),
    help="coortweet: least shares an account needs (detect_groups' min_participation).",
)
@click.option(
    "--edge-weight",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="coortweet: quantile of edge weights above which an edge is kept.",
)
@click.option(
    "--subgraph",
    default=0,
    show_default=True,
    type=click.IntRange(0, 1),
    help="coortweet: 1 writes only the edges above the --edge-weight quantile.",
)
@click.option(
    "--max-object-pairs",
    default=2_000_000,
    show_default=True,
    type=click.IntRange(min=0),
    help="Leave out objects with more candidate pairs than this (viral content; listed "
    "in run.json); 0 for none left out. The --compat modes are always exact.",
)
@click.option("--overwrite", is_flag=True, help="Replace results a former run left in --out.")
@engine_options
@store_options
def coaction_command(
    inputs: tuple[Path, ...],
    out: Path,
    case_path: Path | None,
    format_: str,
    platform: str | None,
    kinds: tuple[str, ...],
    window: float,
    compat: str | None,
    min_weight: int,
    min_participation: int,
    edge_weight: float,
    subgraph: int,
    max_object_pairs: int,
    overwrite: bool,
    engine: str,
    spark_master: str | None,
    memory_limit: str | None,
    temp_dir: Path | None,
) -> None:
    """Run the co-action detector alone on INPUT_OR_CASE and write its edges to --out.

    Data files are read into a case in memory (spilling to disk beyond the memory
    limit) unless --case names a file to keep it in. With --compat, one file of
    --format qut and the kinds repost or reply are read straight into actions, no case
    built, unless the file has rows ingest would refuse (then the case is built, and
    says which).

    Without --compat: edges.parquet and events.parquet in concerted's evidence format
    (no significance test; `concerted analyze` does that).
    """
    engine = _use_engine(engine, spark_master)
    direct = fastpath.applies(
        inputs, case_path=case_path, format_=format_, compat_mode=compat, kinds=kinds or None
    )
    if direct is not None and compat is not None:
        # A data file, no case asked for: read straight into actions (the same edges).
        with _progress(err.is_terminal) as say:
            done = fastpath.coaction(
                inputs,
                out,
                window=window,
                compat_mode=compat,
                kinds=kinds or None,
                platform=platform,
                min_weight=min_weight,
                min_participation=min_participation,
                edge_weight=edge_weight,
                subgraph=subgraph,
                overwrite=overwrite,
                memory_limit=memory_limit,
                temp_directory=temp_dir or out / "spill.tmp",
                progress=say,
            )
        if done is not None:
            for name, rows in done.items():
                click.echo(f"{out / name}: {rows:,} rows")
            return
    with _progress(err.is_terminal) as say:
        spill = temp_dir or (None if case_path else out / "spill.tmp")
        store = _open(inputs, case_path, format_, memory_limit, spill, say, platform)
        with store:
            say("pairing")
            written = analysis.coaction(
                store,
                out,
                kinds=kinds or None,
                window=window,
                compat_mode=compat,
                min_weight=min_weight,
                min_participation=min_participation,
                edge_weight=edge_weight,
                subgraph=subgraph,
                max_object_pairs=max_object_pairs or None,
                overwrite=overwrite,
                engine=engine,
            )
    for name, rows in written.items():
        click.echo(f"{out / name}: {rows:,} rows")


@cli.command("report")
@click.argument("result", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--hide-text", is_flag=True, help="Leave every message text out of the page.")
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the page (default: RESULT/report.html); summary.json goes beside it.",
)
def report_command(result: Path, hide_text: bool, out_file: Path | None) -> None:
    """Rebuild report.html (and summary.json) from the finished analysis in RESULT.

    The page is one file that opens offline: every script, style and font is inside it.
    """
    from concerted.outputs import page

    path = page.write(result, hide_text=hide_text, out=out_file)
    out.print(f"report written to {escape(str(path))}", highlight=False)


@cli.command("demo")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("concerted-demo"),
    show_default=True,
    help="Directory for the simulated data (data/) and the analysis with its report (result/).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulation.")
@click.option(
    "--scale",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Multiply the scenario's counts (0.1 runs in seconds).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation as JSON.")
@click.option(
    "--cache/--no-cache",
    default=True,
    show_default=True,
    help="Keep the simulated world and its case in the user's cache directory "
    "(CONCERTED_CACHE, else $XDG_CACHE_HOME/concerted) and reuse them; the analysis "
    "runs every time.",
)
def demo_command(out_dir: Path, seed: int, scale: float, as_json: bool, cache: bool) -> None:
    """Simulate a network like the 2020 Pakistan case (pages, groups, accounts and two
    mass-reporting brigades), analyse it, write the report and score it against the
    simulation's truth."""
    from concerted.demo import demo

    with _progress(not as_json and err.is_terminal) as say:
        done = demo(out_dir, seed=seed, scale=scale, progress=say, cache=cache)
    if as_json:
        click.echo(json.dumps(done.evaluation, indent=2))
        return
    _print_campaigns(done.result, done.run)
    _print_evaluation(done.evaluation)
    out.print(
        f"\nreport: [bold]{escape(str(done.report.resolve()))}[/] (open it in a browser)\n"
        f"simulated data and its truth: {escape(str(done.data))}",
        highlight=False,
    )


def _print_evaluation(evaluation: dict[str, Any]) -> None:
    table = Table(title="against the simulation's truth")
    for column in ("found", "precision", "recall", "F1", "true +", "false +", "missed"):
        table.add_column(column, justify="left" if column == "found" else "right")

    def ratio(value: Any) -> str:
        return "–" if value is None else f"{value:.3f}"

    for name in ("accounts", "targets", "reports", "automated_reporters"):
        s = evaluation.get(name) or {}
        table.add_row(
            name.replace("_", " "),
            ratio(s.get("precision")),
            ratio(s.get("recall")),
            ratio(s.get("f1")),
            f"{s.get('tp', 0):,}",
            f"{s.get('fp', 0):,}",
            f"{s.get('fn', 0):,}",
        )
    c = evaluation.get("campaigns") or {}
    table.add_row(
        "campaigns",
        ratio(c.get("precision")),
        ratio(c.get("recall")),
        ratio(c.get("f1")),
        f"{c.get('matched', 0):,}",
        f"{c.get('false_campaigns', 0):,}",
        f"{c.get('operations', 0) - c.get('operations_matched', 0):,}",
    )
    out.print(table)
    for m in c.get("matches") or []:
        out.print(
            f"  {escape(m['campaign_id'])} is {escape(m['operation_id'])} "
            f"(Jaccard {m['jaccard']:.2f})",
            highlight=False,
        )


# The service (`concerted serve`): a self-contained block; the service's modules are
# imported only when it runs, so the other commands start as fast as before.

_SCOPES = ("reports:write", "reports:read", "admin")


@cli.group("serve", invoke_without_command=True)
@click.option(
    "--state",
    type=click.Path(file_okay=False, path_type=Path),
    help="State directory: the intake log, snapshots, tokens (default ./concerted-state).",
)
@click.option("--host", help="Address to listen on (default 127.0.0.1, loopback only).")
@click.option("--port", type=int, help="Port to listen on (default 8787).")
@click.option(
    "--tokens",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Token file (default STATE/tokens.json).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file with [service] and [scoring] settings (docs/service.md).",
)
@click.option(
    "--log",
    "log_url",
    help="Intake log: sqlite (default, in --state) or a NATS JetStream server, nats://HOST:4222.",
)
@click.option(
    "--reanalyse-every",
    help="Run the batch brigade stage over the recent reports this often (90s, 10m, 2h); "
    "its findings mark targets for review (hindsight).",
)
@click.pass_context
def serve_command(
    ctx: click.Context,
    state: Path | None,
    host: str | None,
    port: int | None,
    tokens: Path | None,
    config_file: Path | None,
    log_url: str | None,
    reanalyse_every: str | None,
) -> None:
    """Run the report-queue guard: score every report as it arrives (docs/service.md)."""
    if ctx.invoked_subcommand is not None:
        return
    from concerted.service.server import run
    from concerted.service.settings import load_settings

    run(
        load_settings(
            config_file,
            state=state,
            host=host,
            port=port,
            tokens=tokens,
            log=log_url,
            reanalyse_every=reanalyse_every,
        )
    )


@serve_command.group("token")
def serve_token_command() -> None:
    """Manage the service's bearer tokens."""


@serve_token_command.command("create")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(_SCOPES),
    help="A scope of the token (repeatable).",
)
@click.option(
    "--state",
    type=click.Path(file_okay=False, path_type=Path),
    help="State directory (default ./concerted-state, or serve's --state).",
)
@click.option(
    "--tokens",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Token file (default STATE/tokens.json, or serve's --tokens).",
)
@click.pass_context
def serve_token_create_command(
    ctx: click.Context, scopes: tuple[str, ...], state: Path | None, tokens: Path | None
) -> None:
    """Create a token and print it once; only its hash is stored."""
    from concerted.service.auth import create_token
    from concerted.service.settings import load_settings

    outer = _serve_params(ctx)
    settings = load_settings(
        None, state=state or outer.get("state"), tokens=tokens or outer.get("tokens")
    )
    secret, token = create_token(settings.token_file, scopes)
    err.print(
        f"token {token.id} with {', '.join(sorted(token.scopes))} added to "
        f"{settings.token_file}; it is shown once:"
    )
    click.echo(secret)


def _serve_params(ctx: click.Context) -> dict[str, Any]:
    """The options given to ``serve`` itself, above its subcommand."""
    while ctx.parent is not None and ctx.command.name != "serve":
        ctx = ctx.parent
    return dict(ctx.params) if ctx.command.name == "serve" else {}


def _known_format(name: str) -> str:
    """``name`` where it is a registered format; a command-line error (exit 2) naming
    the formats otherwise."""
    known = adapters.available()
    if name not in known:
        raise click.BadParameter(f"no format {name!r}; known: {', '.join(sorted(known))}")
    return name


def _why_none(run: Mapping[str, Any]) -> str:
    """What was tested and how close it came, when no network was flagged."""
    notes = run.get("notes", {}).get("significance", {})
    counts = run["counts"]
    fdr = run["settings"]["significance"]["fdr"]
    if not counts["pairs"]:
        return "no two accounts acted on the same object within the window"
    if counts["significant_pairs"]:
        n = counts["significant_pairs"]
        return (
            f"the {n:,} significant {'pair makes' if n == 1 else 'pairs make'} no group of "
            f"{run['settings']['clusters']['min_accounts']} or more accounts with "
            f"{run['settings']['clusters']['min_degree']} ties each"
        )
    best = notes.get("best_q_value")
    if best is None:
        best = min((row["q_value"] for row in notes.get("by_weight", [])), default=None)
    if best is None:
        return f"no pair reached the false-discovery rate {fdr}"
    return f"the strongest pair reached q {best:.3g}, above the false-discovery rate {fdr}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; errors of the input become one message and exit code 1."""
    try:
        result = cli.main(args=argv, prog_name="concerted", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        err.print("aborted")
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except ConcertedError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        for note in getattr(exc, "__notes__", []):
            err.print(f"  {escape(note)}", highlight=False)
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
