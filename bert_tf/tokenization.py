"""WordPiece vocabularies and the two tokenizers that must agree with each other.

* ``HostTokenizer``: fast batch tokenization on the host (the Rust ``tokenizers`` WordPiece),
  used to convert training and evaluation data into TFRecords.
* ``GraphTokenizer``: the same tokenization as TensorFlow ops (``tensorflow_text.BertTokenizer``
  with the vocab as an asset), used inside exported serving signatures.

Both assemble ``[CLS] a [SEP] (b [SEP])`` and share one pair-truncation rule,
``truncated_lengths``, so a sentence gives the same ids in training and in serving.
"""
import collections
import re

import numpy as np
import tensorflow as tf

from bert_tf import fileio
from bert_tf.data import text_files
from bert_tf.errors import UserError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# BERT's basic tokenizer as RE2 patterns: words split at whitespace, and every punctuation
# character (ASCII symbols count as punctuation) and CJK ideograph is a word of its own.
_PUNCTUATION = r"[!-/]|[:-@]|[\[-`]|[{-~]|\p{P}"
_CJK = (r"[\x{4E00}-\x{9FFF}]|[\x{3400}-\x{4DBF}]|[\x{20000}-\x{2A6DF}]|[\x{2A700}-\x{2B73F}]|"
        r"[\x{2B740}-\x{2B81F}]|[\x{2B820}-\x{2CEAF}]|[\x{F900}-\x{FAFF}]|[\x{2F800}-\x{2FA1F}]")
# The same ranges for Python's re (BERT's _is_chinese_char).
_CJK_CHAR = re.compile("[\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002a6df\U0002a700-\U0002b73f"
                       "\U0002b740-\U0002b81f\U0002b820-\U0002ceaf\uf900-\ufaff\U0002f800-\U0002fa1f]")
_SPLIT_PATTERN = rf"\s+|{_PUNCTUATION}|{_CJK}"
_KEEP_PATTERN = rf"{_PUNCTUATION}|{_CJK}"


def load_vocab(vocab_file):
    """Reads vocab.txt into an ordered {token: id}, rejecting files models would mis-read."""
    fileio.require_file(vocab_file, "--vocab_file", "point it at a vocab.txt (one WordPiece token per line)")
    with tf.io.gfile.GFile(vocab_file, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"vocab file {vocab_file} is not UTF-8 (byte {error.start}): re-save it as UTF-8") from None
    tokens = [line.rstrip("\r") for line in text.lstrip("\ufeff").split("\n")]
    if tokens and tokens[-1] == "":
        tokens.pop()
    vocab = collections.OrderedDict()
    for index, token in enumerate(tokens):
        if token in vocab:
            raise UserError(f"vocab file {vocab_file} lists {token!r} twice (lines {vocab[token] + 1} and "
                            f"{index + 1}): remove the duplicate")
        vocab[token] = index
    missing = [t for t in ("[UNK]", "[CLS]", "[SEP]", "[MASK]") if t not in vocab]
    if missing:
        raise UserError(f"vocab file {vocab_file} lacks {', '.join(missing)}: use a BERT vocab or build one "
                        "with tools/build_vocab.py")
    return vocab


def vocab_casing(vocab_file):
    """(True cased / False uncased / None unknown, pieces with a capital, pieces) from a vocab's word pieces.

    An uncased vocab was learned from lower-cased text, so none of its pieces has a capital;
    a cased one has many (bert-base-cased: about a fifth). A handful in between says nothing.
    """
    pieces = [token[2:] if token.startswith("##") else token for token in load_vocab(vocab_file)
              if not (token.startswith("[") and token.endswith("]"))]
    capitalised = sum(1 for piece in pieces if piece != piece.lower())
    if capitalised == 0:
        return False, 0, len(pieces)
    if capitalised >= 0.01 * len(pieces):
        return True, capitalised, len(pieces)
    return None, capitalised, len(pieces)


def resolve_lower_case(vocab_file, requested=None, stored=None):
    """The lower-casing a vocab needs: ``stored`` (the checkpoint's tokenizer config) when given,
    else inferred from the vocab, else True. A ``requested`` --do_lower_case that contradicts
    either is refused, as google-research/bert's validate_case_matches_checkpoint does: cased
    input to an uncased vocab (or the reverse) quietly maps many words to [UNK] or wrong pieces.
    """
    if stored is not None:
        known, why = bool(stored), f"the checkpoint's tokenizer config says do_lower_case={bool(stored)}"
    else:
        cased, capitalised, total = vocab_casing(vocab_file)
        known = None if cased is None else not cased
        why = f"vocab {vocab_file} is {'cased' if cased else 'uncased'} ({capitalised} of {total} word pieces " \
              "have capitals)"
    if requested is None:
        return True if known is None else known
    if known is not None and bool(requested) != known:
        raise UserError(f"--do_lower_case={bool(requested)} contradicts the model: {why}: leave --do_lower_case out "
                        f"(or pass --do_lower_case={known})")
    return bool(requested)


def build_vocab(input_files, output_file, vocab_size=30522, do_lower_case=True, min_frequency=2, encoding=None):
    """Learns a WordPiece vocab from text files and writes it atomically; returns its size.

    As in BERT's basic tokenizer, every CJK ideograph is a word of its own, so Chinese text
    contributes single characters. The trainer's alphabet is widened to every character seen at
    least ``min_frequency`` times (its default keeps only the 1,000 most frequent, which would
    leave most Chinese characters [UNK]), and ``##`` forms of CJK ideographs are left out: no
    tokenizer can produce them, since an ideograph never continues a word.
    """
    from tokenizers import BertWordPieceTokenizer

    if vocab_size < len(SPECIAL_TOKENS) + 1:
        raise UserError(f"--vocab_size={vocab_size} is too small: use at least {len(SPECIAL_TOKENS) + 1}")
    characters = collections.Counter()

    def lines():
        for path in input_files:
            yield from text_files.read_lines(path, encoding)

    tokenizer = BertWordPieceTokenizer(lowercase=do_lower_case, strip_accents=do_lower_case)
    # A first pass counts characters: the alphabet size must be known before training starts.
    for line in lines():
        characters.update(line)
    alphabet = sum(1 for c, n in characters.items() if n >= min_frequency and not c.isspace())
    tokenizer.train_from_iterator(lines(), vocab_size=vocab_size, min_frequency=min_frequency,
                                  limit_alphabet=max(1000, alphabet), special_tokens=list(SPECIAL_TOKENS),
                                  show_progress=False)
    tokens = [t for t, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
              if not (t.startswith("##") and _CJK_CHAR.fullmatch(t[2:]))]
    fileio.write_text(output_file, "\n".join(tokens) + "\n")
    return len(tokens)


def truncated_lengths(len_a, len_b, budget):
    """Lengths to keep of two segments sharing ``budget`` tokens (longest-first, ties favour a).

    Works on Python ints, numpy arrays and tensors alike, which is the point: host and graph
    tokenizers call this one rule.
    """
    keep_a = _minimum(len_a, _maximum(budget - len_b, (budget + 1) // 2))
    keep_b = _minimum(len_b, budget - keep_a)
    return keep_a, keep_b


def _minimum(a, b):
    return tf.minimum(a, b) if tf.is_tensor(a) or tf.is_tensor(b) else np.minimum(a, b)


def _maximum(a, b):
    return tf.maximum(a, b) if tf.is_tensor(a) or tf.is_tensor(b) else np.maximum(a, b)


class HostTokenizer:
    """Batch WordPiece on the host, producing fixed-length BERT inputs as numpy arrays."""

    def __init__(self, vocab_file, do_lower_case=True):
        from tokenizers import BertWordPieceTokenizer

        self.vocab = load_vocab(vocab_file)
        self.vocab_file = vocab_file
        self.do_lower_case = do_lower_case
        self.inv_vocab = {i: t for t, i in self.vocab.items()}
        self.cls_id, self.sep_id = self.vocab["[CLS]"], self.vocab["[SEP]"]
        self.mask_id, self.unk_id = self.vocab["[MASK]"], self.vocab["[UNK]"]
        self.pad_id = self.vocab.get("[PAD]", 0)
        # The vocab read through gfile above, handed over as a dict: no local file needed.
        self._wordpiece = BertWordPieceTokenizer(dict(self.vocab), lowercase=do_lower_case,
                                                 strip_accents=do_lower_case, clean_text=True,
                                                 handle_chinese_chars=True, unk_token="[UNK]")
        # Literal "[SEP]"/"[MASK]" typed in user text are words, as in google-research/bert and
        # in the serving graph; special tokens are only ever inserted by id.
        self._wordpiece._tokenizer.encode_special_tokens = True

    @property
    def vocab_size(self):
        return len(self.vocab)

    def tokenize_ids(self, texts):
        """WordPiece ids of each text, without special tokens."""
        encodings = self._wordpiece.encode_batch(list(texts), add_special_tokens=False)
        return [e.ids for e in encodings]

    def tokenize_with_offsets(self, texts):
        """Per text, (ids, [(char_start, char_end)] of each piece in the original text); for QA spans."""
        encodings = self._wordpiece.encode_batch(list(texts), add_special_tokens=False)
        return [(e.ids, e.offsets) for e in encodings]

    def tokenize_words(self, words_batch):
        """For pre-split words (tagging): per sentence, the ids and the index of each word's first piece."""
        encodings = self._wordpiece.encode_batch([list(w) for w in words_batch], is_pretokenized=True,
                                                 add_special_tokens=False)
        result = []
        for encoding in encodings:
            word_ids = encoding.word_ids
            starts = [i for i, w in enumerate(word_ids) if i == 0 or word_ids[i - 1] != w]
            result.append((encoding.ids, starts, word_ids))
        return result

    def convert_ids_to_tokens(self, ids):
        return [self.inv_vocab.get(int(i), "[UNK]") for i in ids]

    def encode(self, texts, text_pairs=None, max_seq_length=128):
        """Returns (features dict of int32 [N, max_seq_length], number of truncated examples)."""
        ids_a = self.tokenize_ids(texts)
        ids_b = self.tokenize_ids(text_pairs) if text_pairs is not None else [None] * len(ids_a)
        n = len(ids_a)
        input_ids = np.full((n, max_seq_length), self.pad_id, np.int32)
        segment_ids = np.zeros((n, max_seq_length), np.int32)
        input_mask = np.zeros((n, max_seq_length), np.int32)
        truncated = 0
        for row, (a, b) in enumerate(zip(ids_a, ids_b)):
            tokens, types = self.pack(a, b, max_seq_length)
            if len(tokens) < len(a) + (len(b) + 1 if b is not None else 0) + 2:
                truncated += 1
            input_ids[row, :len(tokens)] = tokens
            segment_ids[row, :len(types)] = types
            input_mask[row, :len(tokens)] = 1
        return {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids}, truncated

    def pack(self, a, b, max_seq_length):
        """[CLS] a [SEP] (b [SEP]) with the shared truncation rule; returns (ids, type ids)."""
        if b is None:
            keep_a = min(len(a), max_seq_length - 2)
            return [self.cls_id] + list(a[:keep_a]) + [self.sep_id], [0] * (keep_a + 2)
        keep_a, keep_b = truncated_lengths(len(a), len(b), max_seq_length - 3)
        keep_a, keep_b = int(keep_a), int(keep_b)
        ids = [self.cls_id] + list(a[:keep_a]) + [self.sep_id] + list(b[:keep_b]) + [self.sep_id]
        return ids, [0] * (keep_a + 2) + [1] * (keep_b + 1)


class GraphTokenizer(tf.Module):
    """In-graph BERT tokenization for serving: raw strings in, padded int32 model inputs out.

    Uses only ops that stock TensorFlow Serving builds carry (TF Text's ``BasicTokenizer`` and
    ``WordpieceTokenizer`` ops, ``normalize_utf8``, ``combine_segments``, ``pad_model_inputs``, core
    string ops); truncation is ragged slicing.

    Normalisation follows the host tokenizer (Hugging Face ``BertNormalizer``: drop control and
    format characters, map Unicode spaces to spaces, then NFD + strip accents + lowercase) rather
    than TF Text's ``lower_case=True``, whose NFKC case folding turns "ß" into "ss", full-width
    letters into ASCII and so on, so serving ids would differ from training ids.
    """

    MAX_CHARS_PER_WORD = 100  # longer words become [UNK], as in BERT's WordPiece

    def __init__(self, vocab_file, do_lower_case=True, max_seq_length=128, name=None):
        super().__init__(name=name)
        import tensorflow_text as tf_text

        vocab = load_vocab(vocab_file)
        self.vocab_file = tf.saved_model.Asset(vocab_file)
        initializer = tf.lookup.TextFileInitializer(
            self.vocab_file, key_dtype=tf.string, key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            value_dtype=tf.int64, value_index=tf.lookup.TextFileIndex.LINE_NUMBER)
        self.table = tf.lookup.StaticHashTable(initializer, default_value=vocab["[UNK]"])
        # The word-length limit is applied in characters below; bytes only bound the op's work.
        self._wordpiece = tf_text.WordpieceTokenizer(self.table, token_out_type=tf.int64, unknown_token="[UNK]",
                                                     max_bytes_per_word=4 * self.MAX_CHARS_PER_WORD)
        self.do_lower_case = bool(do_lower_case)
        self.cls_id, self.sep_id, self.unk_id = vocab["[CLS]"], vocab["[SEP]"], vocab["[UNK]"]
        self.pad_id = vocab.get("[PAD]", 0)
        self.max_seq_length = max_seq_length

    def normalize(self, text):
        """The host tokenizer's text normalisation as string ops (invalid UTF-8 becomes U+FFFD, dropped)."""
        import tensorflow_text as tf_text

        text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
        text = tf.strings.regex_replace(text, r"[\t\n\r\p{Z}]", " ")
        text = tf.strings.regex_replace(text, r"[\p{C}\x{FFFD}]", "")
        if self.do_lower_case:
            text = tf_text.normalize_utf8(text, "NFD")
            text = tf.strings.regex_replace(text, r"\p{Mn}", "")
            # ICU lowercases a word-final capital sigma to "ς"; Hugging Face (char by char) gives "σ".
            text = tf.strings.lower(tf.strings.regex_replace(text, "\u03a3", "\u03c3"), encoding="utf-8")
        return text

    def _pieces(self, text, normalized=False):
        """Ids of any-rank ``text``: [..., words, pieces] (words as BERT's basic tokenizer splits them)."""
        import tensorflow_text as tf_text

        words = tf_text.regex_split(text if normalized else self.normalize(text), _SPLIT_PATTERN, _KEEP_PATTERN)
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > self.MAX_CHARS_PER_WORD
        words = words.with_flat_values(tf.where(too_long, "[UNK]", words.flat_values))
        return self._wordpiece.tokenize(words)

    def word_pieces(self, text):
        """[batch] strings -> ragged [batch, pieces] WordPiece ids."""
        return self._pieces(text).merge_dims(-2, -1)

    def pieces_by_word(self, text):
        """[batch] strings -> (words [batch, words], ids [batch, words, pieces]), split on whitespace.

        ``words`` are the original substrings. A word keeps all its pieces together (punctuation
        included), the way pre-split CoNLL words are tokenized by ``HostTokenizer.tokenize_words``;
        a word that normalises to nothing (stray control characters) gets one [UNK], as in training.
        """
        words = tf.strings.split(text)
        pieces = self._pieces(words.with_flat_values(self.normalize(words.flat_values)), normalized=True)
        per_word = pieces.values.merge_dims(-2, -1)
        unk = tf.fill([tf.shape(per_word.row_lengths())[0], 1], tf.constant(self.unk_id, tf.int64))
        per_word = self.keep_first(tf.concat([per_word, unk], axis=1), tf.maximum(per_word.row_lengths(), 1))
        return words, pieces.with_values(per_word)

    @staticmethod
    def keep_first(ragged, lengths):
        """The first ``lengths[i]`` items of each row of a 2-D ragged tensor (ragged slicing)."""
        positions = tf.ragged.range(ragged.row_lengths())
        return tf.ragged.boolean_mask(ragged, positions < tf.expand_dims(lengths, 1))

    def pack(self, segments, pad_to_longest=False):
        """[CLS] a [SEP] (b [SEP]) from ragged id segments -> padded int32 model inputs.

        Pads to ``max_seq_length``, or with ``pad_to_longest`` only to the batch's longest row, so
        short requests do not pay for attention over padding (serving does this).
        """
        return self.pad(*self.combine(segments), pad_to_longest=pad_to_longest)

    def combine(self, segments):
        """Ragged (ids, type ids) of [CLS] a [SEP] (b [SEP])."""
        import tensorflow_text as tf_text

        return tf_text.combine_segments(segments, start_of_sequence_id=self.cls_id, end_of_segment_id=self.sep_id)

    def pad(self, ids, type_ids, pad_to_longest=False):
        """Ragged ids and type ids -> dict of padded int32 model inputs (see ``pack``)."""
        import tensorflow_text as tf_text

        if pad_to_longest:
            # At least [CLS] [SEP] wide, so an empty batch still has a shape the model accepts.
            shape = tf.stack([ids.nrows(), tf.maximum(tf.reduce_max(ids.row_lengths()), 2)])
            input_ids = ids.to_tensor(default_value=self.pad_id, shape=shape)
            attention_mask = tf.ones_like(ids).to_tensor(default_value=0, shape=shape)
            token_type_ids = type_ids.to_tensor(default_value=0, shape=shape)
        else:
            input_ids, attention_mask = tf_text.pad_model_inputs(ids, self.max_seq_length, pad_value=self.pad_id)
            token_type_ids, _ = tf_text.pad_model_inputs(type_ids, self.max_seq_length)
        return {"input_ids": tf.cast(input_ids, tf.int32),
                "attention_mask": tf.cast(attention_mask, tf.int32),
                "token_type_ids": tf.cast(token_type_ids, tf.int32)}

    def segments(self, text, text_pair=None):
        """Ragged id segments of ``text`` (and ``text_pair``), truncated to fit ``max_seq_length``."""
        a = self.word_pieces(text)
        if text_pair is None:
            return [self.keep_first(a, tf.minimum(a.row_lengths(), self.max_seq_length - 2))]
        b = self.word_pieces(text_pair)
        keep_a, keep_b = truncated_lengths(a.row_lengths(), b.row_lengths(),
                                           tf.constant(self.max_seq_length - 3, tf.int64))
        return [self.keep_first(a, keep_a), self.keep_first(b, keep_b)]

    def __call__(self, text, text_pair=None, pad_to_longest=False):
        return self.pack(self.segments(text, text_pair), pad_to_longest)
