r"""Fine-tune BERT for sentence(-pair) classification or regression, evaluate and predict.

Example:
  python tools/run_classifier.py --init_checkpoint=path/to/bert --train_file=train.tsv \
    --dev_file=dev.tsv --do_train --do_eval --output_dir=/tmp/sst2
"""
import bert_tf  # noqa: F401  (must come first: selects Keras 2 for transformers' TF classes)
from absl import flags

from bert_tf import cli
from bert_tf.jobs import classifier, finetune

FLAGS = flags.FLAGS
classifier.define_flags(FLAGS)


def main(_):
    finetune.print_results(classifier.run(FLAGS))


if __name__ == "__main__":
    cli.run(main)
