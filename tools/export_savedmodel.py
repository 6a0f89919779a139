"""Export a fine-tuned model as a TensorFlow Serving SavedModel (export_dir/<version>/).

Example:
  python tools/export_savedmodel.py --model_dir=/tmp/sst2 --export_dir=/tmp/serving/sst2
"""
import bert_tf  # noqa: F401
from absl import flags

from bert_tf import cli
from bert_tf.export import exporter

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A fine-tuning --output_dir (or its model/ subdirectory).")
flags.DEFINE_string("export_dir", None, "Serving base directory; the export goes to export_dir/<version>/.")
flags.DEFINE_integer("version", None, "Version number (default: one more than the highest present).")
flags.DEFINE_integer("max_seq_length", None, "Sequence length of the text signature (default: training's).")


def main(_):
    if not FLAGS.model_dir or not FLAGS.export_dir:
        raise bert_tf.errors.UserError("--model_dir and --export_dir are required")
    path = exporter.export_saved_model(FLAGS.model_dir, FLAGS.export_dir, FLAGS.version, FLAGS.max_seq_length)
    print(f"exported {path}")


if __name__ == "__main__":
    cli.run(main)
