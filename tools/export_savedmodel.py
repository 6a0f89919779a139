"""Export a fine-tuned model as a TensorFlow Serving SavedModel (export_dir/<version>/).

Example:
  python tools/export_savedmodel.py --model_dir=/tmp/sst2 --export_dir=/tmp/serving/sst2
  python tools/export_savedmodel.py --model_dir=/tmp/sst2 --export_dir=/tmp/serving/sst2 --quantize=float16
  python tools/export_savedmodel.py --model_dir=/tmp/sst2 --export_dir=/tmp/tflite/sst2 --format=tflite --quantize=dynamic
"""
import bert_tf  # noqa: F401
from absl import flags

from bert_tf import cli, fileio
from bert_tf.errors import UserError
from bert_tf.export import exporter, tflite

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A fine-tuning --output_dir (or its model/ subdirectory); the task, labels "
                    "and tokenizer settings are read from it.")
flags.DEFINE_string("export_dir", None, "Serving base directory; the export goes to export_dir/<version>/.")
flags.DEFINE_integer("version", None, "Version number (default: one more than the highest present). An existing "
                     "version is never overwritten.")
flags.DEFINE_integer("max_seq_length", None, "Sequence length of the text signature (default: training's).")
flags.DEFINE_enum("format", "saved_model", ["saved_model", "tflite"],
                  "saved_model: TF Serving SavedModel, raw text in. tflite: model.tflite on token ids (builtin ops "
                  "only; the caller tokenizes with the vocab.txt written beside it; classification and regression).")
flags.DEFINE_enum("quantize", "none", sorted(set(exporter.QUANTIZE) | set(tflite.QUANTIZE)),
                  "float16 (saved_model): weights stored as float16 (half the size), computed in float32 after "
                  "loading. dynamic (tflite): dynamic-range quantization, int8 weights (about a quarter of the size).")


def main(_):
    if not FLAGS.model_dir or not FLAGS.export_dir:
        raise UserError("--model_dir and --export_dir are required")
    fileio.check_outputs_apart({"--export_dir": FLAGS.export_dir}, {"--model_dir": FLAGS.model_dir})
    allowed = tflite.QUANTIZE if FLAGS.format == "tflite" else exporter.QUANTIZE
    if FLAGS.quantize not in allowed:
        raise UserError(f"--quantize={FLAGS.quantize} does not apply to --format={FLAGS.format}: use one of "
                        f"{', '.join(allowed)}")
    export = tflite.export_tflite if FLAGS.format == "tflite" else exporter.export_saved_model
    path = export(FLAGS.model_dir, FLAGS.export_dir, FLAGS.version, FLAGS.max_seq_length, quantize=FLAGS.quantize)
    print(f"exported {path}")


if __name__ == "__main__":
    cli.run(main)
