"""Benchmarks against named peers, one run each: python tools/benchmark.py NAME [--flags].

Each (listed below, from benchmarks/ beside tools/) prints its figures, the ratio to the peer, and
the command to reproduce it.
"""
import ast
import importlib.util
import os
import sys

import bert_tf  # noqa: F401
from absl import flags

from bert_tf import cli
from bert_tf.errors import UserError

# The benchmarks live beside tools/ in the checkout, outside the installed package: `python
# tools/benchmark.py` puts tools/ on sys.path, not the repository root that holds them.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchmarks  # noqa: E402

FLAGS = flags.FLAGS


def main(_):
    benchmark.run(FLAGS)


def _summaries():
    """NAME: first line of each benchmark module's docstring, read without importing it."""
    lines = []
    for name, module in sorted(benchmarks.BENCHMARKS.items()):
        with open(importlib.util.find_spec(module).origin, encoding="utf-8") as f:
            doc = ast.get_docstring(ast.parse(f.read())) or ""
        lines.append(f"  {name:<18} {doc.splitlines()[0] if doc else ''}")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        asked = len(sys.argv) > 1 and sys.argv[1] in cli.HELP_ARGS
        print(f"{__doc__.strip()}\n\nbenchmarks:\n{_summaries()}\n\n"
              "python tools/benchmark.py NAME --help lists the flags of one benchmark.",
              file=sys.stdout if asked else sys.stderr)
        sys.exit(0 if asked else 2)
    try:
        benchmark = benchmarks.load(sys.argv.pop(1))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    benchmark.define_flags(FLAGS)
    cli.run(main, doc=benchmark.__doc__)
