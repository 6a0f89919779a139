"""Fine-tune BERT for token tagging (POS, NER) on CoNLL files, evaluate and predict.

Example:
  python tools/run_tagger.py --init_checkpoint=path/to/bert --train_file=train.conll \
    --dev_file=dev.conll --test_file=test.conll --do_train --do_eval --do_predict --output_dir=/tmp/pos
"""
import json

import bert_tf  # noqa: F401  (must come first: selects Keras 2 for transformers' TF classes)
from absl import flags

from bert_tf import cli
from bert_tf.jobs import tagger

FLAGS = flags.FLAGS
tagger.define_flags(FLAGS)


def main(_):
    results = tagger.run(FLAGS)
    for split in ("eval", "test"):
        if results.get(split):
            shown = {k: v for k, v in results[split].items() if not isinstance(v, (list, dict))}
            print(f"{split}: {json.dumps(shown, sort_keys=True)}")


if __name__ == "__main__":
    cli.run(main)
