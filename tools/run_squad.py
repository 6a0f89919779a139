r"""Fine-tune BERT for extractive question answering on SQuAD v1.1/v2.0 JSON, evaluate and predict.

Example:
  python tools/run_squad.py --init_checkpoint=path/to/bert --train_file=train-v1.1.json \
    --predict_file=dev-v1.1.json --do_train --do_eval --output_dir=/tmp/squad
"""
import bert_tf  # noqa: F401  (must come first: selects Keras 2 for transformers' TF classes)
from absl import flags

from bert_tf import cli
from bert_tf.jobs import finetune, squad

FLAGS = flags.FLAGS
squad.define_flags(FLAGS)


def main(_):
    finetune.print_results(squad.run(FLAGS))


if __name__ == "__main__":
    cli.run(main)
