"""Benchmarks against named peers, one run each: python tools/benchmark.py NAME [--flags].

Names: finetune, serving, pretraining_data, pretraining_step. Each prints its figures, the ratio
to the peer, and the command to reproduce it.
"""
import sys

import bert_tf  # noqa: F401
from absl import flags

from bert_tf import benchmarks, cli
from bert_tf.errors import UserError

FLAGS = flags.FLAGS


def main(_):
    benchmark.run(FLAGS)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        print(f"usage: python tools/benchmark.py NAME [--flags]; NAME is one of {', '.join(sorted(benchmarks.BENCHMARKS))}",
              file=sys.stderr)
        sys.exit(2)
    try:
        benchmark = benchmarks.load(sys.argv.pop(1))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    benchmark.define_flags(FLAGS)
    cli.run(main)
