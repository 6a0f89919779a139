"""Reading a pretraining corpus: text files -> one flat token array with sentence and document starts.

Input is google-research/bert's format: one sentence per line, a blank line between documents.
Tokenization gives exactly ``HostTokenizer.tokenize_ids``'s ids, in batches, with plain-ASCII lines
split in Python and their words tokenized once each (see ``LineTokenizer``); the corpus is held once as flat
int32 arrays, never as corpus x dupe_factor instances.

With ``pre_segmented`` the lines are words separated by spaces ("中国 人民 银行", the output of a
word segmenter) and the corpus records which tokens continue a word, for Chinese whole-word
masking. The spaces change no token (ideographs are split anyway).
"""
import collections
import dataclasses
import itertools
import re

import numpy as np

from bert_tf import gfile
from bert_tf.data import text_files
from bert_tf.errors import UserError
from bert_tf.training import progress

TOKENIZE_BATCH = 20000


@dataclasses.dataclass
class Corpus:
    """A tokenized corpus as flat arrays: sentence i is tokens[sent_start[i]:sent_start[i+1]],
    document d is sentences doc_start[d]..doc_start[d+1]-1."""
    tokens: np.ndarray
    sent_start: np.ndarray
    doc_start: np.ndarray
    stats: dict
    continuation: np.ndarray = None  # bool per token: continues the previous token's word (pre-segmented input)

    @property
    def num_documents(self):
        return len(self.doc_start) - 1



def _lines(path, stats, encoding=None):
    """Stripped text lines of one file; undecodable lines are skipped and counted.

    A UTF-8 BOM is dropped and a UTF-16 file (BOM) is decoded whole; a line that is not UTF-8 but
    reads as GB18030 Chinese stops the run with the ``--encoding`` to pass, since then the whole
    file is most likely in that encoding and skipping would silently drop it.
    """
    encoding = text_files.check_encoding(encoding) or "utf-8"
    with gfile.GFile(path, "rb") as f:
        head = f.read(2)
    if head in (b"\xff\xfe", b"\xfe\xff"):
        yield from (line.strip() for line in text_files.read_lines(path, None if encoding == "utf-8" else encoding))
        return
    with gfile.GFile(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as error:
                if encoding == "utf-8" and text_files.looks_gb18030(raw):
                    raise text_files.decode_error(path, raw, None, error, first_line=number) from None
                stats["skipped_non_utf8_lines"] += 1
                if stats["skipped_non_utf8_lines"] == 1:
                    stats["first_non_utf8_line"] = f"{path}:{number}"
                continue
            yield line.strip()


class LineTokenizer:
    """``HostTokenizer.tokenize_ids`` for many lines at once, as (flat int32 ids, int64 lengths).

    Printable-ASCII lines without "[" (most lines of typical corpora) need none of the host
    pipeline's normalization: lower-casing is str.lower, and BERT's basic tokenizer only splits
    them at spaces and around each ASCII symbol (``_WORD``). Their words are tokenized once each,
    through the ``HostTokenizer`` itself, and looked up after that: three times faster than the
    pipeline on every line, and as fast as tensorflow-text's FastWordpieceTokenizer without
    TensorFlow's import (tests compare the ids). Every other line (accents, CJK, control
    characters, literal "[MASK]") goes through the ``HostTokenizer`` whole.
    """

    _PLAIN = re.compile(r"[\x20-\x5a\x5c-\x7e]*\Z")
    _SYMBOLS = r"!-/:-@\[-`{-~"
    _WORD = re.compile(rf"[{_SYMBOLS}]|[^ {_SYMBOLS}]+")

    def __init__(self, host):
        self.host = host
        self._word_index = {}  # word -> its row in _word_lengths / its pieces in _word_pieces
        self._word_lengths = np.zeros(0, np.int64)
        self._word_pieces = np.zeros(0, np.int32)

    def segmented(self, lines):
        """(flat ids, lengths, continuation flags) of space-separated words; see ``pre_segmented``."""
        lengths = np.zeros(len(lines), np.int64)
        ids, continuation = [], []
        for index, (pieces, _, word_ids) in enumerate(self.host.tokenize_words([line.split() for line in lines])):
            lengths[index] = len(pieces)
            ids.extend(pieces)
            continuation.extend(i > 0 and word_ids[i] == word_ids[i - 1] for i in range(len(pieces)))
        return np.asarray(ids, np.int32), lengths, np.asarray(continuation, bool)

    def _learn(self, words):
        """Adds the pieces of ``words`` (new, distinct) to the word table."""
        lengths, pieces = self.host.pieces_of_words(words)
        self._word_index.update(zip(words, range(len(self._word_index), len(self._word_index) + len(words))))
        self._word_lengths = np.concatenate([self._word_lengths, lengths])
        self._word_pieces = np.concatenate([self._word_pieces, pieces])

    def _plain(self, lines):
        """(flat ids, lengths) of plain lines, from the word table."""
        words = list(map(self._WORD.findall, [line.lower() for line in lines] if self.host.do_lower_case else lines))
        all_words = list(itertools.chain.from_iterable(words))
        new = [word for word in dict.fromkeys(all_words) if word not in self._word_index]
        if new:
            self._learn(new)
        rows = np.fromiter(map(self._word_index.__getitem__, all_words), np.int64, len(all_words))
        word_starts = np.cumsum(self._word_lengths) - self._word_lengths
        lengths = self._word_lengths[rows]
        ends = np.cumsum(lengths)
        # Each token's place in the word table: its word's start there plus its rank within the word.
        total = int(ends[-1]) if len(ends) else 0
        flat = self._word_pieces[np.repeat(word_starts[rows] - (ends - lengths), lengths) + np.arange(total)]
        line_ends = np.concatenate([[0], ends])[np.cumsum([len(w) for w in words])]
        return flat, np.diff(line_ends, prepend=0)

    def __call__(self, lines):
        plain = np.fromiter((self._PLAIN.match(line) is not None for line in lines), bool, len(lines))
        lengths = np.zeros(len(lines), np.int64)
        fast_flat = np.zeros(0, np.int32)
        if plain.any():
            fast_flat, lengths[plain] = self._plain([line for line, p in zip(lines, plain) if p])
        other = np.flatnonzero(~plain)
        other_ids = self.host.tokenize_ids([lines[i] for i in other]) if len(other) else []
        for index, ids in zip(other, other_ids):
            lengths[index] = len(ids)
        ends = np.cumsum(lengths)
        flat = np.empty(int(ends[-1]) if len(ends) else 0, np.int32)
        if len(fast_flat):
            # Destination of each fast-path token: its line's start plus its rank within the line.
            fast_lengths = lengths[plain]
            line_starts = (ends - lengths)[plain]
            fast_starts = np.cumsum(fast_lengths) - fast_lengths
            flat[np.repeat(line_starts - fast_starts, fast_lengths) + np.arange(len(fast_flat))] = fast_flat
        for index, ids in zip(other, other_ids):
            flat[ends[index] - len(ids):ends[index]] = ids
        return flat, lengths


def _line_chunks(input_files, stats, encoding=None):
    """(lines, document index per line) in chunks of TOKENIZE_BATCH; blank lines and file ends split documents."""
    pending, pending_doc = [], []
    current_doc = -1
    for path in input_files:
        new_document = True
        for line in _lines(path, stats, encoding):
            stats["lines"] += 1
            if not line:
                new_document = True
                continue
            if new_document:
                current_doc += 1
                new_document = False
            pending.append(line)
            pending_doc.append(current_doc)
            if len(pending) >= TOKENIZE_BATCH:
                yield pending, pending_doc
                pending, pending_doc = [], []
    if pending:
        yield pending, pending_doc


def read_corpus(input_files, tokenizer, max_seq_length=128, verbose=True, pre_segmented=False, encoding=None):
    """Reads and tokenizes documents into a ``Corpus``; blank lines (and file ends) end documents.

    With ``pre_segmented``, lines are space-separated words and the corpus records which tokens
    continue a word (for Chinese whole-word masking).
    """
    stats = collections.Counter(dict.fromkeys(("lines", "skipped_non_utf8_lines", "skipped_empty_sentences"), 0))
    token_chunks, length_chunks, doc_chunks, continuation_chunks = [], [], [], []
    bar = progress.Bar(None, unit="line", desc="tokenizing", enabled=verbose)
    line_tokenizer = LineTokenizer(tokenizer)
    for lines, docs in _line_chunks(input_files, stats, encoding):
        if pre_segmented:
            flat, lengths, continuation = line_tokenizer.segmented(lines)
            continuation_chunks.append(continuation)
        else:
            flat, lengths = line_tokenizer(lines)
        token_chunks.append(flat)
        length_chunks.append(lengths)
        doc_chunks.append(np.asarray(docs, np.int64))
        bar.update(stats["lines"])
    bar.close()
    lengths = np.concatenate(length_chunks) if length_chunks else np.zeros(0, np.int64)
    docs = np.concatenate(doc_chunks) if doc_chunks else np.zeros(0, np.int64)
    kept = lengths > 0
    stats["skipped_empty_sentences"] = int(np.sum(~kept))
    lengths, docs = lengths[kept], docs[kept]
    all_docs = int(docs.max()) + 1 if len(docs) else 0
    per_doc = np.bincount(docs, minlength=all_docs) if len(docs) else np.zeros(0, np.int64)
    # Documents whose lines all tokenized to nothing were counted above; they are dropped.
    sizes = per_doc[per_doc > 0]
    stats["empty_documents"] = int(np.sum(per_doc == 0))
    stats["documents"] = len(sizes)
    stats["sentences"] = len(lengths)
    stats["single_sentence_documents"] = int(np.sum(sizes == 1))
    stats["tokens"] = int(lengths.sum())
    stats["sentences_longer_than_max_seq_length"] = int(np.sum(lengths > max_seq_length - 3))
    if len(sizes) < 2:
        raise UserError(f"{','.join(input_files)} holds {len(sizes)} non-empty document(s): next-sentence "
                        "prediction needs at least two (separate documents with a blank line)")
    tokens = np.concatenate(token_chunks) if token_chunks else np.zeros(0, np.int32)
    sent_start = np.concatenate([[0], np.cumsum(lengths)])
    doc_start = np.concatenate([[0], np.cumsum(sizes)])
    continuation = None
    if pre_segmented:
        continuation = np.concatenate(continuation_chunks) if continuation_chunks else np.zeros(0, bool)
    return Corpus(tokens, sent_start, doc_start, dict(stats), continuation)

