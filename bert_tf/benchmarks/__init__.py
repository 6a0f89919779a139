"""Benchmarks behind ``tools/benchmark.py <name>``: each measures bert_tf against a named peer in one run.

A benchmark module defines ``define_flags(fv)`` and ``run(flags) -> dict``; it prints a ratio
and the command that reproduces it, and may save PNG plots.
"""
import importlib

BENCHMARKS = {
    "finetune": "bert_tf.benchmarks.finetune",
    "serving": "bert_tf.benchmarks.serving",
    "pretraining_data": "bert_tf.benchmarks.pretraining_data",
    "pretraining_step": "bert_tf.benchmarks.pretraining_step",
    "resume": "bert_tf.benchmarks.resume",
    "quality": "bert_tf.benchmarks.quality",
}


def load(name):
    from bert_tf.errors import UserError

    if name not in BENCHMARKS:
        raise UserError(f"unknown benchmark {name!r}: choose one of {', '.join(sorted(BENCHMARKS))}")
    return importlib.import_module(BENCHMARKS[name])
