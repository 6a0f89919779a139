"""The create_pretraining_data job: flags -> settings -> record files (tools/create_pretraining_data.py)."""
import os

from absl import flags as absl_flags

from bert_tf import fileio
from bert_tf.data import pretraining, record_writer
from bert_tf.data.text_files import ENCODING_HELP
from bert_tf.errors import UserError
from bert_tf.flag_ranges import check_ranges
from bert_tf.tokenization import HostTokenizer


def define_flags(fv):
    """Flags of tools/create_pretraining_data.py (google-research/bert names and defaults)."""
    f = absl_flags
    f.DEFINE_string("input_file", None, "Input text: comma-separated files or globs, one sentence per line, "
                    "a blank line between documents.", flag_values=fv)
    f.DEFINE_string("output_file", None, "Output TFRecord file (with --num_output_shards > 1, the shard prefix).",
                    flag_values=fv)
    f.DEFINE_string("vocab_file", None, "WordPiece vocab.txt the model will use.", flag_values=fv)
    f.DEFINE_bool("do_lower_case", True, "Lower-case (and strip accents from) the input text.", flag_values=fv)
    f.DEFINE_bool("do_whole_word_mask", False, "Mask whole words (all their ## pieces) instead of single pieces. "
                  "Each CJK character is a word of its own unless --pre_segmented.", flag_values=fv)
    f.DEFINE_bool("pre_segmented", False, "The input is word-segmented, words separated by spaces (e.g. Chinese "
                  "from a word segmenter): with --do_whole_word_mask all pieces of a word are masked together. "
                  "The spaces change no token.", flag_values=fv)
    f.DEFINE_string("encoding", None, ENCODING_HELP, flag_values=fv)
    f.DEFINE_integer("max_seq_length", 128, "Sequence length of every instance, [CLS] and [SEP]s included.",
                     flag_values=fv)
    f.DEFINE_integer("max_predictions_per_seq", 20, "Maximum masked-LM predictions per sequence.", flag_values=fv)
    f.DEFINE_integer("random_seed", 12345, "Seed for packing and masking (same seed, same bytes).", flag_values=fv)
    f.DEFINE_integer("dupe_factor", 10, "Times the corpus is packed and masked, each time differently.",
                     flag_values=fv)
    f.DEFINE_float("masked_lm_prob", 0.15, "Fraction of tokens to predict.", flag_values=fv)
    f.DEFINE_float("short_seq_prob", 0.1, "Probability of a shorter target length for a document's instances.",
                   flag_values=fv)
    f.DEFINE_integer("num_output_shards", 1, "Write this many shards (file-SSSSS-of-NNNNN), round robin.",
                     flag_values=fv)
    f.DEFINE_integer("num_workers", max(1, min(os.cpu_count() or 1, 8)),
                     "Worker processes for packing/masking; the output does not depend on it.", flag_values=fv)
    f.DEFINE_bool("gzip", False, "GZIP-compress the records (readers then need compression GZIP).", flag_values=fv)
    f.DEFINE_bool("dynamic_masking", False,
                  "Write unmasked sequences (no masked_lm_* features); run_pretraining.py --dynamic_masking "
                  "then draws new masks every epoch.", flag_values=fv)
    check_ranges(fv)


def settings_from(flags):
    return pretraining.Settings(
        max_seq_length=flags.max_seq_length, max_predictions_per_seq=flags.max_predictions_per_seq,
        random_seed=flags.random_seed, dupe_factor=flags.dupe_factor, masked_lm_prob=flags.masked_lm_prob,
        short_seq_prob=flags.short_seq_prob, do_whole_word_mask=flags.do_whole_word_mask,
        dynamic_masking=flags.dynamic_masking, pre_segmented=flags.pre_segmented)


def run(flags, verbose=True):
    """The create_pretraining_data job; returns its statistics."""
    if not flags.input_file:
        raise UserError("--input_file is required: comma-separated text files or globs")
    if not flags.output_file:
        raise UserError("--output_file is required")
    for output in record_writer.shard_paths(flags.output_file, flags.num_output_shards or 1):
        fileio.check_outputs_apart({"--output_file": output},
                                   {"--input_file": flags.input_file, "--vocab_file": flags.vocab_file})
    settings = settings_from(flags)
    settings.validate()
    tokenizer = HostTokenizer(flags.vocab_file, do_lower_case=flags.do_lower_case)
    return pretraining.create_pretraining_data(
        flags.input_file, flags.output_file, tokenizer, settings, num_output_shards=flags.num_output_shards,
        num_workers=flags.num_workers, gzip=flags.gzip, verbose=verbose, encoding=flags.encoding)
