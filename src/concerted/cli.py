"""The ``concerted`` command: parse, call one library function, print.

Exit codes: 0 done; 1 the input or the case could not be used (a concerted error,
printed as one message); 2 the command line itself was wrong.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from concerted import __version__, adapters, evaluate, simulate
from concerted.adapters.base import AdapterOptions
from concerted.errors import ConcertedError
from concerted.ingest import IngestOptions, SourceReport, ingest
from concerted.privacy import Pseudonymiser
from concerted.schema import CONTRACTS
from concerted.store import Store

__all__ = ["main", "cli"]

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
                _print_ingest([report])
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in reports], indent=2))


def _print_ingest(reports: list[SourceReport]) -> None:
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
        if r.rows_duplicate:
            out.print(
                f"  {r.rows_duplicate:,} rows already in the case (same key), not added twice"
            )
        if r.rows_set_aside:
            out.print(
                f"  [yellow]{r.rows_set_aside:,} rows set aside[/] in the quarantine "
                "table (reasons: concerted info CASE)"
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
        summary = simulate.simulate(sc, seed=seed, out=out_dir, overwrite=overwrite, progress=say)
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
