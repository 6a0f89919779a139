"""Export a fine-tuned model as a TensorFlow Serving SavedModel (export_dir/<version>/).

Example:
  python tools/export_savedmodel.py --model_dir=/tmp/sst2 --export_dir=/tmp/serving/sst2
  python tools/export_savedmodel.py --model_dir=/tmp/sst2 --export_dir=/tmp/serving/sst2 --quantize=float16
"""
import bert_tf  # noqa: F401
from absl import flags

from bert_tf import cli
from bert_tf.errors import UserError
from bert_tf.export import exporter

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A fine-tuning --output_dir (or its model/ subdirectory); the task, labels "
                    "and tokenizer settings are read from it.")
flags.DEFINE_string("export_dir", None, "Serving base directory; the export goes to export_dir/<version>/.")
flags.DEFINE_integer("version", None, "Version number (default: one more than the highest present). An existing "
                     "version is never overwritten.")
flags.DEFINE_integer("max_seq_length", None, "Sequence length of the text signature (default: training's).")
flags.DEFINE_enum("quantize", "none", list(exporter.QUANTIZE),
                  "float16: store weights as float16 (half the size), computed in float32 after loading.")


def main(_):
    if not FLAGS.model_dir or not FLAGS.export_dir:
        raise UserError("--model_dir and --export_dir are required")
    path = exporter.export_saved_model(FLAGS.model_dir, FLAGS.export_dir, FLAGS.version, FLAGS.max_seq_length,
                                       quantize=FLAGS.quantize)
    print(f"exported {path}")


if __name__ == "__main__":
    cli.run(main)
