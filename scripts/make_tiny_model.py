#!/usr/bin/env python3
"""Write a tiny random-weight Llama + tokenizer into OUTDIR (loadable with from_pretrained(OUTDIR)).

usage: python scripts/make_tiny_model.py OUTDIR [--hidden-size N] [--layers N] [--vocab-size N] [--seed N]
"""

from __future__ import annotations

import argparse
import sys

from llenergymeasure.harness.tiny_model import TinyModelSpec, build_tiny_llama


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="directory to create (config.json, model.safetensors, tokenizer files)")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--intermediate-size", type=int, default=None, help="default: 2 × hidden size")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    spec = TinyModelSpec(
        hidden_size=args.hidden_size,
        intermediate_size=args.intermediate_size or 2 * args.hidden_size,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.heads,
        vocab_size=args.vocab_size,
        seed=args.seed,
    )
    path = build_tiny_llama(args.outdir, spec)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
