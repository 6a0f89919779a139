r"""Convert a BERT checkpoint (HF TF dir, safetensors dir, google-research TF1 ckpt, hub id) to Hugging Face format.

Example:
  python tools/convert_checkpoint.py --init_checkpoint=uncased_L-12_H-768_A-12/bert_model.ckpt \
    --output_dir=/tmp/bert-base-hf
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
