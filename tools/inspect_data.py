"""Look at fine-tuning data before training: label counts, word-piece lengths, truncation at
--max_seq_length, empty/duplicate rows, dev/test rows also in train, with one-line warnings.

Takes the fine-tuning script's own flags (same names, same flagfile), chosen by --task, which must
be given on the command line; with --output_dir it writes data_report.json and data_report.png there,
as every fine-tuning job does at its start.

Example:
  python tools/inspect_data.py --task=classification --init_checkpoint=path/to/bert \
    --train_file=data/sentiment/train.tsv --dev_file=data/sentiment/dev.tsv --test_file=data/sentiment/test.tsv \
    --max_seq_length=64 --output_dir=/tmp/sentiment_report
"""
import importlib
import sys

import bert_tf  # noqa: F401
from absl import flags

from bert_tf import cli
from bert_tf.data import report
from bert_tf.errors import UserError

# task -> the job whose flags (and file readers) it shares
JOBS = {"classification": "classifier", "regression": "classifier", "tagging": "tagger", "squad": "squad",
        "multiple_choice": "multiple_choice"}


def _task(argv):
    for i, arg in enumerate(argv):
        if arg.startswith("--task="):
            return arg.split("=", 1)[1]
        if arg == "--task" and i + 1 < len(argv):
            return argv[i + 1]
    return "classification"


TASK = _task(sys.argv)
FLAGS = flags.FLAGS
flags.DEFINE_enum("task", "classification", list(JOBS), "Which fine-tuning script's data and flags: "
                  + ", ".join(JOBS) + " (give it on the command line, not in a flagfile).")
if TASK in JOBS:
    importlib.import_module(f"bert_tf.jobs.{JOBS[TASK]}").define_flags(FLAGS)


def main(_):
    from bert_tf.jobs import common

    if TASK != FLAGS.task:
        raise UserError(f"--task={FLAGS.task} came from a flagfile: give --task on the command line")
    if FLAGS.task == "regression" and FLAGS.task_type != "regression":
        FLAGS.task_type = "regression"
    if not FLAGS.train_file and not getattr(FLAGS, "dev_file", None) and not getattr(FLAGS, "test_file", None):
        raise UserError("no data file given: pass --train_file, --dev_file and/or --test_file")
    tokenizer = common.resolve_model(FLAGS).tokenizer
    splits = report.read_splits(FLAGS, FLAGS.task)
    result, lengths = report.build_report(splits, tokenizer, FLAGS.max_seq_length, FLAGS.task,
                                          getattr(FLAGS, "max_query_length", None) if FLAGS.task == "squad" else None)
    report.print_report(result)
    if FLAGS.output_dir:
        report.write_report(FLAGS.output_dir, result, lengths)
        print(f"wrote {FLAGS.output_dir}/{report.REPORT_JSON} and {report.REPORT_PNG}")


if __name__ == "__main__":
    cli.run(main)
