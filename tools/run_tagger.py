r"""Fine-tune BERT for token tagging (POS, NER) on CoNLL files, evaluate and predict.

Example:
  python tools/run_tagger.py --init_checkpoint=path/to/bert --train_file=train.conll \
    --dev_file=dev.conll --test_file=test.conll --do_train --do_eval --do_predict --output_dir=/tmp/pos
"""
import bert_tf  # noqa: F401  (must come first: selects Keras 2 for transformers' TF classes)
from absl import flags

from bert_tf import cli
from bert_tf.jobs import finetune, tagger

FLAGS = flags.FLAGS
tagger.define_flags(FLAGS)


def main(_):
    finetune.print_results(tagger.run(FLAGS))


if __name__ == "__main__":
    cli.run(main)
