"""WordPiece vocabularies and the two tokenizers that must agree with each other.

* ``HostTokenizer``: fast batch tokenization on the host (the Rust ``tokenizers`` WordPiece),
  used to convert training and evaluation data into TFRecords.
* ``GraphTokenizer`` (bert_tf/export/graph_tokenizer.py): the same tokenization as TensorFlow
  ops, used inside exported serving signatures; kept apart so that this module loads without
  TensorFlow.

Both assemble ``[CLS] a [SEP] (b [SEP])`` and share one pair-truncation rule,
``truncated_lengths``, so a sentence gives the same ids in training and in serving.
"""
import collections
import re
import sys

import numpy as np

from bert_tf import fileio, gfile
from bert_tf.data import text_files
from bert_tf.errors import UserError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# CJK ideographs, BERT's _is_chinese_char ranges (each one is a word of its own).
_CJK_CHAR = re.compile("[\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002a6df\U0002a700-\U0002b73f"
                       "\U0002b740-\U0002b81f\U0002b820-\U0002ceaf\uf900-\ufaff\U0002f800-\U0002fa1f]")


def load_vocab(vocab_file):
    """Reads vocab.txt into an ordered {token: id}, rejecting files models would mis-read."""
    fileio.require_file(vocab_file, "--vocab_file", "point it at a vocab.txt (one WordPiece token per line)")
    with gfile.GFile(vocab_file, "rb") as f:
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
    learned = {t for t in tokenizer.get_vocab() if not (t.startswith("##") and _CJK_CHAR.fullmatch(t[2:]))}
    # The trainer numbers tokens of equal count in hash order, which changes from run to run; ids
    # do not change how WordPiece splits text, so the file lists the same set in a fixed order
    # (special tokens first, at the ids BERT expects), and one corpus always gives one vocab.txt.
    tokens = list(SPECIAL_TOKENS) + sorted(learned - set(SPECIAL_TOKENS))
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
    tf = _tensorflow_if_tensor(a, b)
    return tf.minimum(a, b) if tf else np.minimum(a, b)


def _maximum(a, b):
    tf = _tensorflow_if_tensor(a, b)
    return tf.maximum(a, b) if tf else np.maximum(a, b)


def _tensorflow_if_tensor(a, b):
    """TensorFlow when ``a`` or ``b`` is a tensor; looked up, not imported: host-only scripts
    (create_pretraining_data) never load it, and then nothing can be a tensor."""
    tf = sys.modules.get("tensorflow")
    return tf if tf is not None and (tf.is_tensor(a) or tf.is_tensor(b)) else None


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

    def pieces_of_words(self, words):
        """(int64 piece count per word, flat int32 ids) of single words (no spaces), in one call on
        the words joined by spaces: one Encoding instead of one per word."""
        encoding = self._wordpiece.encode(" ".join(words), add_special_tokens=False)
        counts = np.bincount(np.asarray(encoding.word_ids, np.int64), minlength=len(words))
        if len(counts) == len(words):
            return counts, np.asarray(encoding.ids, np.int32)
        # Some "word" was several for the pipeline (it holds punctuation): one encoding each.
        per_word = self.tokenize_ids(words)
        return np.array([len(ids) for ids in per_word], np.int64), np.array([i for ids in per_word for i in ids],
                                                                            np.int32)

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
