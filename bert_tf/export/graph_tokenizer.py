"""``GraphTokenizer``: ``HostTokenizer``'s tokenization as TensorFlow ops, for serving signatures.

Kept out of bert_tf/tokenization.py so that the host tokenizer loads without TensorFlow.
"""
import tensorflow as tf

from bert_tf.tokenization import load_vocab, truncated_lengths

# BERT's basic tokenizer as RE2 patterns: words split at whitespace, and every punctuation
# character (ASCII symbols count as punctuation) and CJK ideograph is a word of its own.
_PUNCTUATION = r"[!-/]|[:-@]|[\[-`]|[{-~]|\p{P}"
_CJK = (r"[\x{4E00}-\x{9FFF}]|[\x{3400}-\x{4DBF}]|[\x{20000}-\x{2A6DF}]|[\x{2A700}-\x{2B73F}]|"
        r"[\x{2B740}-\x{2B81F}]|[\x{2B820}-\x{2CEAF}]|[\x{F900}-\x{FAFF}]|[\x{2F800}-\x{2FA1F}]")
_SPLIT_PATTERN = rf"\s+|{_PUNCTUATION}|{_CJK}"
_KEEP_PATTERN = rf"{_PUNCTUATION}|{_CJK}"


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
