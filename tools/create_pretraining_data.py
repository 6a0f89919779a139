r"""Raw text -> masked-LM/next-sentence TFRecords (google-research/bert's flags, schema and defaults).

Example:
  python tools/create_pretraining_data.py --input_file=corpus/*.txt --vocab_file=vocab.txt \
    --output_file=data/pretrain.tfrecord --num_output_shards=4 --num_workers=2
"""
import json

import bert_tf  # noqa: F401  (must come first)
from absl import flags

from bert_tf import cli
from bert_tf.jobs import create_pretraining_data as job

FLAGS = flags.FLAGS
job.define_flags(FLAGS)


def main(_):
    stats = job.run(FLAGS)
    print(json.dumps(stats, sort_keys=True))


if __name__ == "__main__":
    cli.run(main)
