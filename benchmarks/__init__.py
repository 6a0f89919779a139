"""Benchmarks behind ``tools/benchmark.py <name>``: each measures bert_tf against a named peer in one run.

A benchmark module defines ``define_flags(fv)`` and ``run(flags) -> dict``; it prints a ratio
and the command that reproduces it, and may save PNG plots.
"""
import importlib
import os

from bert_tf.errors import UserError

# The checkout the benchmarks run from: its data/ sets and benchmark_output/.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BENCHMARKS = {
    "finetune": "benchmarks.finetune",
    "serving": "benchmarks.serving",
    "pretraining_data": "benchmarks.pretraining_data",
    "record_codec": "benchmarks.record_codec",
    "pretraining_step": "benchmarks.pretraining_step",
    "resume": "benchmarks.resume",
    "quality": "benchmarks.quality",
}


def load(name):
    if name not in BENCHMARKS:
        raise UserError(f"unknown benchmark {name!r}: choose one of {', '.join(sorted(BENCHMARKS))}")
    return importlib.import_module(BENCHMARKS[name])
