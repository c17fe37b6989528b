"""The `curate` command: parses flags and calls library functions, nothing more."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from curate.pipeline import BuildError, build
from curate.sources import SourceError
from schemas.bundle import BundleError
from schemas.recipe import RecipeError, load_recipe

SCHEMAS = {
    "record": "schemas.record:Record",
    "recipe": "schemas.recipe:Recipe",
    "manifest": "schemas.manifest:Manifest",
    "reject": "schemas.manifest:Reject",
    "alpaca": "schemas.shapes:AlpacaRow",
    "query_response": "schemas.shapes:QueryResponseRow",
    "messages": "schemas.shapes:MessagesRow",
    "sharegpt": "schemas.shapes:ShareGPTRow",
}
CLEAN_ERRORS = (RecipeError, BuildError, SourceError, BundleError)


class InputError(click.ClickException):
    """A bad recipe or input: one line, exit status 2 (runtime failures stay 1)."""

    exit_code = 2


def _one_line(message: str) -> str:
    return message.replace("\r", "\\r").replace("\n", "\\n")


def _log(message: str) -> None:
    click.echo(message, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="curatune")
def main() -> None:
    """Curate chat fine-tuning data into versioned, checked bundles."""


@main.command("build")
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("--output", "output", type=click.Path(path_type=Path), default=None,
              help="output root, used as given (default: the recipe's `output`, which must lie inside "
                   "the recipe's folder or the current directory)")
@click.option("--data-root", "data_roots", type=click.Path(path_type=Path), multiple=True,
              help="a folder the recipe's inputs may come from besides its own (repeatable)")
@click.option("--strict", is_flag=True, help="stop at the first bad record instead of rejecting it")
@click.option("--workers", type=int, default=None,
              help="worker processes (default: one per core); with --engine ray and no --address, the local Ray's CPUs")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this machine; ray: Ray Data (the `ray` extra), same bytes")
@click.option("--address", default=None,
              help="with --engine ray: the Ray cluster to run on (e.g. auto, or HOST:6379); default: start a local Ray")
def build_command(recipe: Path, output: Path | None, data_roots: tuple[Path, ...], strict: bool,
                  workers: int | None, engine: str, address: str | None) -> None:
    """Build a new bundle version from RECIPE; the last line printed is its path.

    Exit status 2: a bad recipe or input (one line names the file and key); 1: the build failed.
    """
    try:
        result = build(load_recipe(recipe, data_roots), output, strict=strict, workers=workers, log=_log,
                       progress=None, engine=engine, address=address)
    except CLEAN_ERRORS as exc:
        raise InputError(_one_line(str(exc))) from None
    except OSError as exc:  # disk full, permissions: the build failed, the input may be fine
        where = f"{exc.filename}: " if exc.filename else ""
        raise click.ClickException(_one_line(f"{where}{exc.strerror or exc}")) from None
    m = result.manifest
    _log(f"{m.counts['read']} read, {m.counts['train']} train, {m.counts['val']} val, "
         f"{m.counts['rejected']} rejected, {m.counts['mixed_out']} left out by the mix; "
         f"domain:general 1:{m.ratio.achieved_general_per_domain:.2f}")
    click.echo(str(result.version_dir))


@main.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--shape", type=click.Choice(["alpaca", "query_response", "messages", "sharegpt"]), default=None)
def validate_command(files: tuple[Path, ...], shape: str | None) -> None:
    """Check FILES record by record without building; exit 1 if any record is invalid."""
    from curate.validate import validate_files

    try:
        report = validate_files(list(files), shape)
    except CLEAN_ERRORS as exc:
        raise click.ClickException(str(exc)) from None
    for reject in report.rejects:
        click.echo(f"{reject.source}:{reject.line}: {reject.reason}: {reject.message}")
    reasons = ", ".join(f"{n} {r}" for r, n in report.reasons.most_common())
    click.echo(f"{report.files} file(s), {report.records} records: {report.valid} valid, "
               f"{len(report.rejects)} invalid" + (f" ({reasons})" if reasons else ""), err=True)
    sys.exit(1 if report.rejects else 0)


@main.command("export")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--to", "fmt", type=click.Choice(["llamafactory", "sharegpt", "alpaca", "swift"]), required=True,
              help="llamafactory/sharegpt/alpaca: LLaMA-Factory files plus dataset_info.json; swift: ms-swift messages")
def export_command(bundle: Path, out: Path, fmt: str) -> None:
    """Write BUNDLE's train and val splits under OUT (a new folder) as FMT reads them; the last line printed is OUT.

    Records a format cannot hold are listed in OUT/skipped.jsonl with the reason.
    """
    from curate.export import ExportError, export_bundle

    try:
        result = export_bundle(bundle, fmt, out)
    except (ExportError, BundleError) as exc:
        raise InputError(_one_line(str(exc))) from None
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise click.ClickException(_one_line(f"{where}{exc.strerror or exc}")) from None
    counts = ", ".join(f"{n} {split}" for split, n in result.written.items())
    skipped = f"; {len(result.skipped)} skipped (see skipped.jsonl)" if result.skipped else ""
    _log(f"{fmt}: {counts}{skipped}")
    click.echo(str(out))


@main.command("schema")
@click.argument("name", type=click.Choice(sorted(SCHEMAS)))
def schema_command(name: str) -> None:
    """Print the JSON Schema of a record, recipe, manifest, reject or input shape."""
    import importlib

    module, attr = SCHEMAS[name].split(":")
    model = getattr(importlib.import_module(module), attr)
    click.echo(json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False))


def _register_optional() -> None:
    """`stats` and `diff` live in their own module; the build works without it."""
    try:
        from curate.stats_cli import diff_command, stats_command
    except ImportError:
        return
    main.add_command(stats_command, "stats")
    main.add_command(diff_command, "diff")


_register_optional()


if __name__ == "__main__":
    main()
