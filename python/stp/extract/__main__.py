"""`python -m stp.extract`: Mathlib extraction and the SFT set.

    python -m stp.extract run --prefix Mathlib.Algebra.Group [--workers 32] [--verify]
    python -m stp.extract assemble [--out DIR]
    python -m stp.extract verify [--out DIR]
    python -m stp.extract sft [--out DIR] [--format stp|clean]
    python -m stp.extract sft --from-hf        # the original prepare_datasets.py

`run` is resumable: rerunning it extracts only the modules not yet stored under --out.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from stp import storage
from stp.cli import (
    EXIT_FAILURES,
    EXIT_OK,
    ArgumentParser,
    UsageError,
    add_config_arguments,
    config_from_args,
    count_arg,
    positive_float_arg,
    run_main,
    setup_logging,
)
from stp.config import STPConfig, resolve_data_dir
from stp.data import mathlib_files as files
from stp.extract.records import ExtractedTheorem
from stp.host import workers_after_reserve


def _default_out(cfg: STPConfig) -> str:
    return files.extract_dir(resolve_data_dir(cfg.run.data_dir))


def _default_sft_dir(cfg: STPConfig) -> str:
    return files.sft_dir(resolve_data_dir(cfg.run.data_dir))


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m stp.extract", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the Lean extractor over Mathlib modules (resumable)")
    add_config_arguments(run)
    run.add_argument("--out", default=None, help="extraction directory (local or gs://); "
                     f"default {files.EXTRACT_DIR_HELP}")
    run.add_argument("--mathlib-dir", default=None, type=Path,
                     help="directory containing Mathlib/ (default "
                     "<lean.project_dir>/.lake/packages/mathlib)")
    run.add_argument("--prefix", action="append", default=[],
                     help="only modules equal to or below this one (repeatable), "
                     "e.g. Mathlib.Algebra")
    run.add_argument("--workers", type=count_arg(0), default=0,
                     help="parallel extractor processes (default: CPUs - reserved)")
    run.add_argument("--ray", action="store_true",
                     help="run on the Ray cluster of cluster.address (or a local one)")
    run.add_argument("--module-timeout", type=positive_float_arg, default=1800.0,
                     help="seconds before a module's extractor is killed (0 = none)")
    run.add_argument("--no-premises", action="store_true", help="do not ask for premises")
    run.add_argument("--retry-failed", action="store_true",
                     help="re-extract modules whose previous attempt failed")
    run.add_argument("--extractor-command", default=None,
                     help="argv of the extractor, shell-quoted (default: lake env "
                     "<project>/<lean.extractor_exe>)")
    run.add_argument("--verify", action="store_true",
                     help="re-check every extracted proof with the verifier")
    run.add_argument("--no-progress", action="store_true")

    assemble = sub.add_parser("assemble", help=f"(re)build {files.THEOREMS} from raw shards")
    add_config_arguments(assemble)
    assemble.add_argument("--out", default=None)

    verify = sub.add_parser("verify", help=f"round-trip check {files.THEOREMS} with Lean")
    add_config_arguments(verify)
    verify.add_argument("--out", default=None)

    sft = sub.add_parser("sft", help="lemma dictionary + SFT/eval examples")
    add_config_arguments(sft)
    sft.add_argument("--extraction", default=None, help="extraction directory "
                     f"(default {files.EXTRACT_DIR_HELP})")
    sft.add_argument("--out", default=None, help=f"output directory (default {files.SFT_DIR_HELP})")
    sft.add_argument("--format", choices=("stp", "clean"), default="stp")
    sft.add_argument("--eval-size", type=count_arg(0), default=4096)
    sft.add_argument("--seed", type=count_arg(0), default=0)
    sft.add_argument("--max-pairs-per-theorem", type=count_arg(1), default=None)
    sft.add_argument("--from-hf", action="store_true",
                     help="instead, write the STP-released SFT set (kfdong/STP_Lean_SFT)")
    return parser


def _extractor_command(cfg: STPConfig, override: str | None) -> tuple[list[str], str | None]:
    if override:
        try:
            argv = shlex.split(override)
        except ValueError as err:  # an unbalanced quote
            raise UsageError(f"--extractor-command: {err} in {override!r}") from None
        if not argv:
            raise UsageError("--extractor-command is empty")
        return argv, None
    from stp.lean.toolchain import extractor_command

    return extractor_command(cfg.lean)


def cmd_run(args: argparse.Namespace, cfg: STPConfig) -> int:
    from stp.extract.driver import discover_modules, run_extraction
    from stp.lean import toolchain

    out = args.out or _default_out(cfg)
    command, cwd = _extractor_command(cfg, args.extractor_command)
    mathlib = args.mathlib_dir or (toolchain.project_dir(cfg.lean) / ".lake" / "packages"
                                   / "mathlib")
    jobs = discover_modules(mathlib, args.prefix)
    workers = args.workers or workers_after_reserve(cfg.cluster.reserved_cpus)
    ray_address = (cfg.cluster.address or "local") if args.ray else ""
    result = run_extraction(jobs, out, command, cwd=cwd, workers=workers,
                            premises=not args.no_premises,
                            timeout_s=args.module_timeout or None,
                            retry_failed=args.retry_failed, ray_address=ray_address,
                            progress=not args.no_progress,
                            modules_per_process=cfg.extract.modules_per_process)
    print(f"modules: {result.total} selected, {result.resumed} already done, "
          f"{len(result.processed)} extracted now ({len(result.failed)} failed) "
          f"in {result.seconds:.1f}s")
    code = _report_assembly(out)
    if args.verify:
        code = max(code, cmd_verify_dir(cfg, out))
    return code


def _report_assembly(out: str) -> int:
    from stp.extract.assemble import assemble_directory

    res = assemble_directory(out)
    print(f"theorems: {res.theorems} from {res.modules - len(res.failed_modules)} modules "
          f"-> {res.path}")
    if res.skipped:
        print("skipped constants: " + ", ".join(f"{k} {v}" for k, v in
                                                sorted(res.skipped.items())))
    if res.lean_errors:
        print(f"Lean errors while re-elaborating: {res.lean_errors} (see raw shards)")
    if res.failed_modules:
        print(f"failed modules: {len(res.failed_modules)}")
        for module, message in res.failed_modules[:10]:
            print(f"  {module}: {message[:200]}")
        return EXIT_FAILURES
    return EXIT_OK


def _load_theorems(path: str) -> list[ExtractedTheorem]:
    if not storage.exists(path):
        raise UsageError(f"{path} not found: run `python -m stp.extract run` first")
    return list(storage.iter_jsonl(path, type=ExtractedTheorem))


def cmd_verify_dir(cfg: STPConfig, out: str) -> int:
    from stp.extract.roundtrip import roundtrip_check, roundtrip_item
    from stp.lean.toolchain import checker_command

    checker_command(cfg.lean)  # fail fast when Lean is missing
    theorems = _load_theorems(storage.join(out, files.THEOREMS))
    passed, failed = roundtrip_check(cfg, theorems)
    storage.write_jsonl(storage.join(out, files.THEOREMS_VERIFIED), passed)
    storage.write_jsonl(storage.join(out, files.VERIFY_FAILURES), [
        {"name": t.name, "module": t.module, "status": r.status, "reasons": r.reasons,
         "detail": r.detail, "errors": [e.text for e in r.errors][:3],
         "statement": roundtrip_item(t).statement if t.val_kind == "term" else t.statement}
        for t, r in failed
    ])
    print(f"verified: {len(passed)} of {len(theorems)} pass -> {files.THEOREMS_VERIFIED}; "
          f"{len(failed)} failures -> {files.VERIFY_FAILURES}")
    return EXIT_OK


def cmd_sft(args: argparse.Namespace, cfg: STPConfig) -> int:
    from stp.extract.sft import build_sft, length_stats, write_examples

    out = args.out or _default_sft_dir(cfg)
    if args.from_hf:
        return _sft_from_hf(cfg, out)
    extraction = args.extraction or _default_out(cfg)
    verified = storage.join(extraction, files.THEOREMS_VERIFIED)
    path = verified if storage.exists(verified) else storage.join(extraction,
                                                                  files.THEOREMS)
    theorems = _load_theorems(path)
    print(f"theorems: {len(theorems)} from {path}")
    sources: dict[str, str] = {}
    if args.format == "stp":
        from stp.extract.driver import source_path

        for module in sorted({t.module for t in theorems}):
            sources[module] = storage.read_text(source_path(extraction, module))
    build = build_sft(theorems, sources, fmt=args.format, eval_size=args.eval_size,
                      seed=args.seed, max_pairs_per_theorem=args.max_pairs_per_theorem)
    from stp.data.lemmas import write_lemma_dict

    write_lemma_dict(storage.join(out, files.LEMMAS), build.lemmas)
    write_examples(storage.join(out, files.SFT), build.sft)
    # The whole extraction is Mathlib: its Mathlib-only part is all of it.
    write_examples(storage.join(out, files.SFT_MATHLIB_ONLY), build.sft)
    write_examples(storage.join(out, files.EVAL), build.prove_eval)
    print(f"lemmas: {len(build.lemmas)} -> {files.LEMMAS}")
    print(f"conjecture examples: {len(build.conjecture)}; proving examples: "
          f"{len(build.prove_train)} train + {len(build.prove_eval)} eval "
          f"(skipped: {build.skipped})")
    print(f"{files.SFT} / {files.SFT_MATHLIB_ONLY}: {len(build.sft)}; {files.EVAL}: "
          f"{len(build.prove_eval)}  (format {args.format}, in {out})")
    for label, examples in (("conjecture", build.conjecture), ("prove", build.prove_train)):
        stats = length_stats(examples)
        print(f"{label} lengths (chars): " + "; ".join(
            f"{part} mean {s['mean']:.0f} median {s['median']:.0f} p95 {s['p95']:.0f} "
            f"max {s['max']:.0f}" for part, s in stats.items()))
    return EXIT_OK


def _sft_from_hf(cfg: STPConfig, out: str) -> int:
    """The counterpart of the original prepare_datasets.py."""
    from stp.data.loaders import load_examples
    from stp.extract.sft import write_examples

    data_dir = resolve_data_dir(cfg.run.data_dir)
    train = load_examples("stp_sft", data_dir, "train", allow_download=cfg.data.allow_download)
    evals = load_examples("stp_sft", data_dir, "eval", allow_download=cfg.data.allow_download)
    mathlib = [e for e in train if "lean_workbook" not in e.prompt]
    write_examples(storage.join(out, files.SFT), train)
    write_examples(storage.join(out, files.SFT_MATHLIB_ONLY), mathlib)
    write_examples(storage.join(out, files.EVAL), evals)
    print(f"kfdong/STP_Lean_SFT: {len(train)} train ({len(mathlib)} Mathlib-only -> "
          f"{files.SFT_MATHLIB_ONLY}), "
          f"{len(evals)} eval -> {out}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cfg = config_from_args(args)
    setup_logging(cfg.run.log_level)
    from stp.lock import lock_dir

    # args.command is one of the four subparsers (argparse refuses anything else).

    # Two extractions (or an extraction and an assembly) in one directory would interleave
    # shards and rewrite each other's outputs: the output directory is locked while working.
    out = args.out or (_default_sft_dir(cfg) if args.command == "sft" else _default_out(cfg))
    if args.command == "run":
        # Flags first: a bad --extractor-command must not leave an empty directory behind.
        _extractor_command(cfg, args.extractor_command)
    with lock_dir(out, purpose=f"stp.extract {args.command}"):
        if args.command == "run":
            return cmd_run(args, cfg)
        if args.command == "assemble":
            return _report_assembly(out)
        if args.command == "verify":
            return cmd_verify_dir(cfg, out)
        return cmd_sft(args, cfg)


if __name__ == "__main__":
    run_main(main)
