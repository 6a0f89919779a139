r"""Fine-tune BERT for SWAG-style multiple choice (context + N endings), evaluate and predict.

Example:
  python tools/run_multiple_choice.py --init_checkpoint=path/to/bert --train_file=train.csv \
    --dev_file=val.csv --do_train --do_eval --output_dir=/tmp/swag
"""
import bert_tf  # noqa: F401  (must come first: selects Keras 2 for transformers' TF classes)
from absl import flags

from bert_tf import cli
from bert_tf.jobs import finetune, multiple_choice

FLAGS = flags.FLAGS
multiple_choice.define_flags(FLAGS)


def main(_):
    finetune.print_results(multiple_choice.run(FLAGS))


if __name__ == "__main__":
    cli.run(main)
