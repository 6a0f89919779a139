"""Learn a WordPiece vocab.txt from text files (one sentence per line).

Example:
  python tools/build_vocab.py --input_file=corpus.txt --output_file=vocab.txt --vocab_size=8000
"""
import bert_tf  # noqa: F401
from absl import flags

from bert_tf import cli, fileio, tokenization
from bert_tf import flags as flag_groups

FLAGS = flags.FLAGS
flags.DEFINE_string("input_file", None, "Text files to learn from (comma-separated globs).")
flags.DEFINE_string("output_file", None, "Where to write vocab.txt (written atomically).")
flags.DEFINE_integer("vocab_size", 30522, "Target vocabulary size, special tokens included.")
flags.DEFINE_integer("min_frequency", 2, "Ignore pieces seen fewer times than this.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case (and strip accents) before learning.")
flags.DEFINE_string("encoding", None, flag_groups.ENCODING_HELP)


def main(_):
    if not FLAGS.output_file:
        raise bert_tf.errors.UserError("--output_file is required")
    fileio.check_outputs_apart({"--output_file": FLAGS.output_file}, {"--input_file": FLAGS.input_file})
    files = fileio.expand_inputs(FLAGS.input_file)
    size = tokenization.build_vocab(files, FLAGS.output_file, FLAGS.vocab_size, FLAGS.do_lower_case,
                                    FLAGS.min_frequency, encoding=FLAGS.encoding)
    print(f"wrote {FLAGS.output_file}: {size} tokens from {len(files)} file(s)")


if __name__ == "__main__":
    cli.run(main)
