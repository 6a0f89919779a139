"""Fine-tune BERT for SWAG-style multiple choice (context + N endings), evaluate and predict.

Example:
  python tools/run_multiple_choice.py --init_checkpoint=path/to/bert --train_file=train.csv \
    --dev_file=val.csv --do_train --do_eval --output_dir=/tmp/swag
"""
import json

import bert_tf  # noqa: F401  (must come first: selects Keras 2 for transformers' TF classes)
from absl import flags

from bert_tf import cli
from bert_tf.jobs import multiple_choice

FLAGS = flags.FLAGS
multiple_choice.define_flags(FLAGS)


def main(_):
    results = multiple_choice.run(FLAGS)
    for split in ("eval", "test"):
        if results.get(split):
            shown = {k: v for k, v in results[split].items() if not isinstance(v, (list, dict))}
            print(f"{split}: {json.dumps(shown, sort_keys=True)}")


if __name__ == "__main__":
    cli.run(main)
