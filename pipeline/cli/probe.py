"""`replaymill probe`: sample unconditional text from a base model, as a reference for `sample --reference`.

A bad model directory, a bad setting or an output in the way is one line on stderr and exit 2,
before anything is written.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from replaymill.pipeline.cli.errors import UsageError

EPILOG = """\
examples:
  # 512 documents as the model starts them (after its EOS token), on the GPU if there is one
  replaymill probe --model out/base --samples 512 --max-new-tokens 256 --output gens.jsonl

  # then: pool documents that resemble them (DSIR)
  replaymill sample --shards out/pool --reference gens.jsonl --tokens 20000000 --output out/replay

output: one JSON object per line, written as each batch finishes: id, text, n_tokens, stop ("eos"
or "length") and settings (model, samples, max_new_tokens, temperature, top_p, seed, batch_size,
prompt, device).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "probe", help="sample unconditional text from a local HF causal LM (a DSIR reference for sample)",
        description="Generate documents from a base model prompted only with its BOS or EOS token, batched, "
        "on CPU or CUDA, and stream them as JSON lines with the generation settings.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, metavar="DIR", help="local Hugging Face model directory (never downloads)")
    p.add_argument("--output", "-o", required=True, metavar="FILE", help="JSONL output file, or - for stdout")
    p.add_argument("--samples", type=int, default=256, metavar="N", help="documents to generate (default 256)")
    p.add_argument("--max-new-tokens", type=int, default=256, metavar="N", help="cap per document (default 256)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0: the model's own distribution)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1.0: off)")
    p.add_argument("--seed", type=int, default=0, help="random seed (each batch is seeded from it)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="sequences generated together (default 32)")
    p.add_argument("--prompt", choices=("eos", "bos"), default="eos",
                   help="the token a document starts after: eos (how replaymill and most pre-training pack "
                   "documents; default) or bos")
    p.add_argument("--device", default="auto", help="auto (CUDA if visible, else CPU), cpu, cuda or cuda:N")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from replaymill.trainer.probe import Probe, ProbeError, ProbeSettings, write_jsonl

    to_stdout = args.output == "-"
    if not to_stdout and Path(args.output).exists() and not args.overwrite:
        raise UsageError(f"{args.output} exists; pass --overwrite to replace it")
    settings = ProbeSettings(samples=args.samples, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                             top_p=args.top_p, seed=args.seed, batch_size=args.batch_size, prompt=args.prompt,
                             device=args.device)
    try:
        probe = Probe(args.model, settings)
    except ProbeError as e:
        raise UsageError(str(e)) from None
    if probe.max_new_tokens != args.max_new_tokens:
        print(f"replaymill probe: --max-new-tokens {args.max_new_tokens} capped at {probe.max_new_tokens}: the "
              f"model's context is {probe.max_new_tokens + 1} positions", file=sys.stderr)
    if to_stdout:
        try:
            summary = write_jsonl(probe.samples(), sys.stdout)
        except BrokenPipeError:  # the reader (e.g. `head`) has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    else:
        try:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            Path(args.output).touch()
        except OSError as e:
            raise UsageError(f"cannot write {args.output}: {e.strerror or e}") from None
        with open(args.output, "w", encoding="utf-8") as out:
            summary = write_jsonl(probe.samples(), out)
    print(f"probe: {summary['samples']} samples, {summary['tokens']:,} tokens ({summary['stopped_at_eos']} ended at EOS, "
          f"{summary['empty']} empty) in {summary['seconds']:.1f} s on {probe.device}; settings "
          f"{json.dumps({k: v for k, v in probe.recorded.items() if k != 'model'})}",
          file=sys.stderr if to_stdout else sys.stdout)
    return 0
