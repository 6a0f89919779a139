r"""Convert a BERT checkpoint to a Hugging Face directory or a keras-hub preset.

Sources: a Hugging Face TF directory, a safetensors directory, a keras-hub BERT preset, a
google-research/bert TF1 checkpoint, a TF Model Garden TF2 checkpoint, or hub:<id> (downloads).
Prints one JSON line: what was matched, the heads kept, and for keras-hub output the largest
difference between keras-hub's encoder outputs and ours.

Examples:
  python tools/convert_checkpoint.py --init_checkpoint=uncased_L-12_H-768_A-12/bert_model.ckpt \
    --output_dir=/tmp/bert-base-hf
  python tools/convert_checkpoint.py --init_checkpoint=/tmp/bert-base-hf --output_dir=/tmp/bert-base-keras-hub \
    --output_format=keras_hub
"""
import json

import bert_tf  # noqa: F401  (must come first)
from absl import flags

from bert_tf import cli
from bert_tf.jobs import convert

FLAGS = flags.FLAGS
convert.define_flags(FLAGS)


def main(_):
    print(json.dumps(convert.run(FLAGS), sort_keys=True))


if __name__ == "__main__":
    cli.run(main)
