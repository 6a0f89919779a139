"""Fine-tune BERT for sentence(-pair) classification or regression, evaluate and predict.

Example:
  python tools/run_classifier.py --init_checkpoint=path/to/bert --train_file=train.tsv \
    --dev_file=dev.tsv --do_train --do_eval --output_dir=/tmp/sst2
"""
import json

import bert_tf  # noqa: F401  (must come first: selects Keras 2 for transformers' TF classes)
from absl import flags

from bert_tf import cli
from bert_tf.jobs import classifier

FLAGS = flags.FLAGS
classifier.define_flags(FLAGS)


def main(_):
    results = classifier.run(FLAGS)
    for split in ("eval", "test"):
        if results.get(split):
            shown = {k: v for k, v in results[split].items() if not isinstance(v, list)}
            print(f"{split}: {json.dumps(shown, sort_keys=True)}")


if __name__ == "__main__":
    cli.run(main)
