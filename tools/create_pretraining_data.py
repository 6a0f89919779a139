r"""Raw text -> masked-LM/next-sentence TFRecords (google-research/bert's flags, schema and defaults).

Example:
  python tools/create_pretraining_data.py --input_file=corpus/*.txt --vocab_file=vocab.txt \
    --output_file=data/pretrain.tfrecord --num_output_shards=4 --num_workers=2
"""
import atexit
import json
import os
import sys

import bert_tf  # noqa: F401  (must come first)
from absl import flags

from bert_tf import cli
from bert_tf.jobs import create_pretraining_data as job

FLAGS = flags.FLAGS
job.define_flags(FLAGS)


def main(_):
    stats = job.run(FLAGS)
    print(json.dumps(stats, sort_keys=True))


def exit_without_teardown(code):
    """Exits once the exit handlers have run, skipping the interpreter's unloading of TensorFlow.

    By the time the script ends its records are closed and renamed; tearing down TensorFlow's
    modules then takes about 2 s on a loaded 2-core machine (a sixth of a 100k-instance run).
    Runs on local files never load TensorFlow; those with remote paths or --gzip do.
    """
    if isinstance(code, str):
        print(code, file=sys.stderr)
    atexit._run_exitfuncs()  # what a normal exit runs first: log handlers, multiprocessing's cleanup
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else int(code is not None))


if __name__ == "__main__":
    try:
        cli.run(main)
    except SystemExit as finished:
        exit_without_teardown(finished.code)
