r"""Pretrain BERT (masked LM + next sentence) on records from tools/create_pretraining_data.py.

Example:
  python tools/run_pretraining.py --input_file=data/pretrain.tfrecord* --bert_config_file=base \
    --vocab_file=vocab.txt --output_dir=/tmp/pretrain --train_batch_size=256 --num_train_steps=100000
Rerun the same command to resume from the latest checkpoint.
"""
import json

import bert_tf  # noqa: F401  (must come first: selects Keras 2 for transformers' TF classes)
from absl import flags

from bert_tf import cli
from bert_tf.jobs import pretraining

FLAGS = flags.FLAGS
pretraining.define_flags(FLAGS)


def main(_):
    results = pretraining.run(FLAGS)
    history = results["train"]["train_history"]
    if history:
        print(f"train: {json.dumps(history[-1], sort_keys=True)}")
    if results["eval"]:
        print(f"eval: {json.dumps(results['eval'], sort_keys=True)}")


if __name__ == "__main__":
    cli.run(main)
