"""Pretraining data: raw text -> masked-LM + next-sentence TFRecords in the google-research/bert schema.

Input is google-research/bert's format: one sentence per line, a blank line between documents.
Output records carry exactly its features (``input_ids``, ``input_mask``, ``segment_ids``,
``masked_lm_positions``, ``masked_lm_ids``, ``masked_lm_weights``, ``next_sentence_labels`` with
1 = random next), so its files and ours are interchangeable.

How it differs from the reference script, and why:
* Tokenization gives exactly ``HostTokenizer.tokenize_ids``'s ids, in batches, with plain-ASCII
  lines on tensorflow-text's FastBertTokenizer (see ``LineTokenizer``); the corpus is held once as
  flat int32 arrays, never as corpus x dupe_factor instances.
* Work is split into tasks of ``DOCS_PER_TASK`` documents per duplication round. Each task draws
  from its own generators seeded by (random_seed, round, task), so output is byte-identical for
  any ``--num_workers``; tasks run in forked worker processes and stream, in task order, into
  ``records.write_records``.
* Masking and record serialization are vectorized over a task's instances with numpy.
* The reference shuffles all instances globally (in RAM); here documents are shuffled per round
  and instances within a task, and the training reader shuffles again.

Whole-word masking (``do_whole_word_mask``) masks all the pieces of a word together. A word is
what whitespace and punctuation delimit, so "##" pieces join their word; but BERT's tokenizer makes
every CJK ideograph a word of its own, so Chinese text is masked character by character. Chinese
whole-word masking needs word boundaries from a segmenter: with ``pre_segmented`` the corpus
lines are words separated by spaces ("中国 人民 银行"), and every piece of one such word is masked
together. The spaces change no token (ideographs are split anyway), so the records are those of
the unsegmented text but for the masks.

With ``dynamic_masking`` the records hold unmasked sequences (no ``masked_lm_*`` features) and
``mask_batch`` draws new masks in the tf.data pipeline every epoch (RoBERTa-style).
"""
import collections
import dataclasses
import functools
import multiprocessing
import os
import random
import re
import time

import numpy as np
import tensorflow as tf

from bert_tf import fileio
from bert_tf.data import records, text_files
from bert_tf.errors import UserError
from bert_tf.tokenization import HostTokenizer
from bert_tf.training import progress

DOCS_PER_TASK = 64
TOKENIZE_BATCH = 20000
SEQUENCE_FEATURES = ("input_ids", "input_mask", "segment_ids")
MASK_FEATURES = ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights")
# What forked workers need (corpus, settings, tokenizer), published before forking.
_STATE = {}


@dataclasses.dataclass(frozen=True)
class Settings:
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    random_seed: int = 12345
    dupe_factor: int = 10
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    do_whole_word_mask: bool = False
    dynamic_masking: bool = False
    pre_segmented: bool = False

    def validate(self):
        if self.max_seq_length < 8:
            raise UserError(f"--max_seq_length={self.max_seq_length} is too short for a sentence pair: use at least 8")
        if not 1 <= self.max_predictions_per_seq <= self.max_seq_length:
            raise UserError(f"--max_predictions_per_seq={self.max_predictions_per_seq} must be between 1 and "
                            f"--max_seq_length ({self.max_seq_length})")
        if self.dupe_factor < 1:
            raise UserError(f"--dupe_factor={self.dupe_factor} must be at least 1")
        if not 0.0 < self.masked_lm_prob < 1.0:
            raise UserError(f"--masked_lm_prob={self.masked_lm_prob} must be in (0, 1)")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise UserError(f"--short_seq_prob={self.short_seq_prob} must be in [0, 1]")
        if self.pre_segmented and not self.do_whole_word_mask:
            raise UserError("--pre_segmented only changes which tokens are masked together: add "
                            "--do_whole_word_mask, or drop --pre_segmented")
        if self.pre_segmented and self.dynamic_masking:
            raise UserError("--pre_segmented cannot take effect with --dynamic_masking (masks drawn in training "
                            "see no word boundaries): drop one of them")


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


@dataclasses.dataclass(frozen=True)
class VocabInfo:
    size: int
    cls_id: int
    sep_id: int
    mask_id: int
    pad_id: int
    continuation: np.ndarray  # bool[size]: token is a "##" word piece

    @classmethod
    def from_tokenizer(cls, tokenizer):
        continuation = np.zeros(tokenizer.vocab_size, bool)
        for token, index in tokenizer.vocab.items():
            continuation[index] = token.startswith("##")
        return cls(tokenizer.vocab_size, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id, tokenizer.pad_id,
                   continuation)


# ---- reading and tokenizing --------------------------------------------------------------------

def _lines(path, stats, encoding=None):
    """Stripped text lines of one file; undecodable lines are skipped and counted.

    A UTF-8 BOM is dropped and a UTF-16 file (BOM) is decoded whole; a line that is not UTF-8 but
    reads as GB18030 Chinese stops the run with the ``--encoding`` to pass, since then the whole
    file is most likely in that encoding and skipping would silently drop it.
    """
    encoding = text_files.check_encoding(encoding) or "utf-8"
    with tf.io.gfile.GFile(path, "rb") as f:
        head = f.read(2)
    if head in (b"\xff\xfe", b"\xfe\xff"):
        yield from (line.strip() for line in text_files.read_lines(path, None if encoding == "utf-8" else encoding))
        return
    with tf.io.gfile.GFile(path, "rb") as f:
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

    Printable-ASCII lines without "[" (most lines of typical corpora) go through tensorflow-text's
    FastBertTokenizer, an order of magnitude faster than the Rust pipeline and identical on them
    (same lower-casing, punctuation splitting, 100-character word limit; tests compare the two);
    every other line (accents, CJK, control characters, literal "[MASK]") goes through the
    ``HostTokenizer`` itself, so its rules stay the one definition.
    """

    _PLAIN = re.compile(r"[\x20-\x5a\x5c-\x7e]*\Z")

    def __init__(self, host):
        import tensorflow_text as tf_text

        self.host = host
        self._fast = tf_text.FastBertTokenizer(list(host.vocab), suffix_indicator="##", max_bytes_per_word=100,
                                               token_out_type=tf.int64, unknown_token="[UNK]",
                                               lower_case_nfd_strip_accents=host.do_lower_case)

    def segmented(self, lines):
        """(flat ids, lengths, continuation flags) of space-separated words; see ``pre_segmented``."""
        lengths = np.zeros(len(lines), np.int64)
        ids, continuation = [], []
        for index, (pieces, _, word_ids) in enumerate(self.host.tokenize_words([line.split() for line in lines])):
            lengths[index] = len(pieces)
            ids.extend(pieces)
            continuation.extend(i > 0 and word_ids[i] == word_ids[i - 1] for i in range(len(pieces)))
        return np.asarray(ids, np.int32), lengths, np.asarray(continuation, bool)

    def __call__(self, lines):
        plain = np.fromiter((self._PLAIN.match(line) is not None for line in lines), bool, len(lines))
        lengths = np.zeros(len(lines), np.int64)
        fast_flat = np.zeros(0, np.int32)
        if plain.any():
            ragged = self._fast.tokenize(tf.constant([line for line, p in zip(lines, plain) if p]))
            fast_flat = ragged.flat_values.numpy().astype(np.int32)
            lengths[plain] = ragged.row_lengths().numpy()
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


def _ordered_map(function, arguments, num_workers, state):
    """``function(*args)`` for each args in forked workers, yielded in order, few tasks in flight.

    ``state`` is published as module globals before forking so workers share it copy-on-write.
    The bounded window keeps memory at a few tasks' results whatever the input size.
    """
    _STATE.clear()
    _STATE.update(state)
    context = multiprocessing.get_context("fork")
    window = collections.deque()
    try:
        with context.Pool(num_workers) as pool:
            for args in arguments:
                window.append(pool.apply_async(function, args))
                if len(window) >= 4 * num_workers:
                    yield window.popleft().get()
            while window:
                yield window.popleft().get()
    finally:
        _STATE.clear()


# ---- instances ---------------------------------------------------------------------------------

def _cuts(len_a, len_b, max_tokens):
    """Tokens to drop from a and b so they fit: always from the longer one, b first on ties."""
    excess = len_a + len_b - max_tokens
    cut_a = cut_b = 0
    if excess <= 0:
        return 0, 0
    gap = min(excess, abs(len_a - len_b))
    if len_a > len_b:
        cut_a += gap
    else:
        cut_b += gap
    excess -= gap
    cut_b += (excess + 1) // 2
    cut_a += excess // 2
    return cut_a, cut_b


def _document_instances(corpus, doc, settings, rng, out):
    """Appends (a_lo, a_hi, b_lo, b_hi, is_random_next) token ranges for one document.

    The reference's packing: fill a chunk of whole sentences up to a target length (short with
    probability short_seq_prob), split it at a random sentence boundary into A and B, and with
    probability 0.5 (always for one-sentence chunks) replace B by text from another document,
    returning the unused sentences to the pool.
    """
    doc_start, sent_start = corpus.doc_start, corpus.sent_start
    first, last = int(doc_start[doc]), int(doc_start[doc + 1])
    starts = sent_start[first:last + 1].tolist()
    n = last - first
    num_docs = corpus.num_documents
    max_tokens = settings.max_seq_length - 3
    draw = rng.random  # int(draw() * n) is uniform on [0, n) up to 2**-53, and 10x cheaper than randrange
    target = 2 + int(draw() * (max_tokens - 1)) if draw() < settings.short_seq_prob else max_tokens
    chunk_first = 0
    i = 0
    while i < n:
        chunk_length = starts[i + 1] - starts[chunk_first]
        if i == n - 1 or chunk_length >= target:
            count = i - chunk_first + 1
            a_sentences = 1 + int(draw() * (count - 1)) if count >= 2 else 1
            a_lo, a_hi = starts[chunk_first], starts[chunk_first + a_sentences]
            if count == 1 or draw() < 0.5:
                is_random = 1
                other = int(draw() * (num_docs - 1))
                other += other >= doc
                o_first, o_last = int(doc_start[other]), int(doc_start[other + 1])
                sentence = o_first + int(draw() * (o_last - o_first))
                b_lo = int(sent_start[sentence])
                needed = target - (a_hi - a_lo)
                b_hi = int(sent_start[sentence + 1])
                sentence += 1
                while b_hi - b_lo < needed and sentence < o_last:
                    sentence += 1
                    b_hi = int(sent_start[sentence])
                # The chunk's sentences after A were not used: they start the next chunk.
                i = chunk_first + a_sentences - 1
            else:
                is_random = 0
                b_lo, b_hi = a_hi, starts[i + 1]
            out.append((a_lo, a_hi, b_lo, b_hi, is_random))
            chunk_first = i + 1
        i += 1


def _ranges(starts, lengths):
    """Concatenation of arange(start, start + length) for each pair (vectorized)."""
    total = int(lengths.sum())
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total)


def _pack(corpus, spans, settings, vocab, rng):
    """Instances -> ids/segments [N, S], lengths [N], labels [N], word continuation [N, S] (None unless the
    corpus is pre-segmented) with random front/back truncation."""
    seq = settings.max_seq_length
    spans = np.asarray(spans, np.int64).reshape(-1, 5)
    n = len(spans)
    a_lo, a_hi, b_lo, b_hi, labels = spans.T
    a_len, b_len = a_hi - a_lo, b_hi - b_lo
    fronts = np.zeros((n, 2), np.int64)
    cuts = np.zeros((n, 2), np.int64)
    for row, (len_a, len_b) in enumerate(zip(a_len.tolist(), b_len.tolist())):
        if len_a + len_b > seq - 3:
            cut_a, cut_b = _cuts(len_a, len_b, seq - 3)
            # Each dropped token comes off the front or the back with probability 1/2.
            cuts[row] = cut_a, cut_b
            fronts[row] = (rng.getrandbits(cut_a).bit_count() if cut_a else 0,
                           rng.getrandbits(cut_b).bit_count() if cut_b else 0)
    a_start, b_start = a_lo + fronts[:, 0], b_lo + fronts[:, 1]
    a_len, b_len = a_len - cuts[:, 0], b_len - cuts[:, 1]
    lengths = a_len + b_len + 3
    ids = np.full((n, seq), vocab.pad_id, np.int32)
    rows = np.arange(n)
    ids[:, 0] = vocab.cls_id
    ids[rows, a_len + 1] = vocab.sep_id
    ids[rows, lengths - 1] = vocab.sep_id
    continuation = None if corpus.continuation is None else np.zeros((n, seq), bool)
    for starts, counts, first_column in ((a_start, a_len, np.ones(n, np.int64)), (b_start, b_len, a_len + 2)):
        target, source = (np.repeat(rows, counts), _ranges(first_column, counts)), _ranges(starts, counts)
        ids[target] = corpus.tokens[source]
        if continuation is not None:
            continuation[target] = corpus.continuation[source]
    columns = np.arange(seq)
    segments = ((columns > (a_len + 1)[:, None]) & (columns < lengths[:, None])).astype(np.int32)
    return ids, segments, lengths, labels, continuation


def num_predictions(lengths, max_predictions, masked_lm_prob):
    """min(P, max(1, round(len * prob))) with round-half-even, as Python's round."""
    return np.minimum(max_predictions, np.maximum(1, np.rint(np.asarray(lengths) * masked_lm_prob))).astype(np.int64)


def mask_instances(ids, lengths, settings, vocab, nrng, continuation=None):
    """Masked-LM predictions for a batch of packed sequences (numpy, vectorized over rows).

    Picks min(P, max(1, round(len * prob))) positions (never [CLS]/[SEP]/padding), in random order
    of whole words when ``do_whole_word_mask`` (a word that would overshoot is skipped), then
    replaces 80% with [MASK], 10% with a random token and keeps 10%. Returns (masked ids,
    positions [N, P], original ids [N, P], weights [N, P] float32). ``continuation`` [N, S] marks
    tokens that continue a word of a pre-segmented corpus; without it "##" pieces do.
    """
    n, seq = ids.shape
    limit = settings.max_predictions_per_seq
    columns = np.arange(seq)
    candidate = (columns < lengths[:, None]) & (columns > 0) & (ids != vocab.sep_id) & (ids != vocab.cls_id)
    if settings.do_whole_word_mask:
        previous = np.zeros_like(candidate)
        previous[:, 1:] = candidate[:, :-1]
        continues = vocab.continuation[ids] if continuation is None else continuation
        starts = candidate & ~(continues & previous)
    else:
        starts = candidate
    target = num_predictions(lengths, limit, settings.masked_lm_prob)
    keys = nrng.random((n, seq))
    keys[~starts] = np.inf
    if settings.do_whole_word_mask:
        order = np.argsort(keys, axis=1, kind="stable")
        # Size of the word beginning at each start: distance to the next start or non-candidate.
        start_index = np.maximum.accumulate(np.where(starts, columns, 0), axis=1)
        group_size = np.zeros((n, seq), np.int64)
        rows = np.broadcast_to(np.arange(n)[:, None], (n, seq))
        np.add.at(group_size, (rows[candidate], start_index[candidate]), 1)
        sizes = np.take_along_axis(group_size, order, axis=1)
        taken = np.zeros((n, seq), bool)
        count = np.zeros(n, np.int64)
        for k in range(seq):
            size = sizes[:, k]
            fits = (size > 0) & (count + size <= target)
            if not fits.any() and not (size > 0).any():
                break
            taken[:, k] = fits
            count += size * fits
        chosen_start = np.zeros((n, seq), bool)
        np.put_along_axis(chosen_start, order, taken, axis=1)
        chosen = candidate & np.take_along_axis(chosen_start, start_index, axis=1)
    else:
        # The `target` smallest keys of each row: compare with the target-th smallest.
        smallest = np.sort(np.partition(keys, limit - 1, axis=1)[:, :limit], axis=1)
        threshold = np.take_along_axis(smallest, (target - 1)[:, None], axis=1)
        chosen = starts & (keys <= threshold)
    # Chosen columns in ascending order per row, left-aligned into [N, P] (at most P per row).
    rows, cols = np.nonzero(chosen)
    counts = chosen.sum(1)
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    positions = np.zeros((n, limit), np.int64)
    positions[rows, rank] = cols
    valid = np.arange(limit)[None, :] < counts[:, None]
    originals = np.where(valid, np.take_along_axis(ids, positions, axis=1), 0)
    draw = nrng.random((n, limit))
    random_ids = nrng.integers(0, vocab.size, (n, limit))
    replaced = np.where(draw < 0.8, vocab.mask_id, np.where(draw < 0.9, originals, random_ids))
    masked = ids.copy()
    masked[rows, cols] = replaced[rows, rank]
    return masked, positions.astype(np.int64), originals.astype(np.int64), valid.astype(np.float32)


# ---- fast tf.train.Example serialization ------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


@functools.lru_cache(maxsize=8)
def _varint_table(limit):
    """Varint bytes of 0..limit-1 as a [limit, width] uint8 table plus each value's byte count."""
    values = np.arange(limit, dtype=np.uint64)
    width = max(1, ((limit - 1).bit_length() + 6) // 7)
    shifts = (np.arange(width) * 7).astype(np.uint64)
    groups = ((values[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    nbytes = 1 + (values[:, None] >= (np.uint64(1) << shifts[1:])).sum(1)
    more = np.arange(width)[None, :] < (nbytes[:, None] - 1)
    return groups | (more.astype(np.uint8) << 7), nbytes


def _packed_varints(matrix):
    """Row-wise protobuf varint encoding of a non-negative int matrix -> list of bytes per row."""
    values = np.asarray(matrix)
    rows, columns = values.shape
    top = int(values.max()) if values.size else 0
    if values.size and (int(values.min()) < 0 or top >= 1 << 28):
        raise ValueError("feature values must be in [0, 2**28)")
    if top < 0x80:  # one byte per value: the row's bytes are the values themselves
        flat = values.astype(np.uint8).tobytes()
        return [flat[i:i + columns] for i in range(0, rows * columns, columns)]
    if top < 1 << 21:  # ids: table lookups sized to a power of two, so a few tables serve every batch
        table, nbytes = _varint_table(1 << top.bit_length())
        encoded, counts = table[values], nbytes[values]
    else:
        wide = values.astype(np.uint64)
        shifts = (np.arange(4) * 7).astype(np.uint64)
        counts = 1 + (wide[..., None] >= (np.uint64(1) << shifts[1:])).sum(-1)
        more = (np.arange(4) < counts[..., None] - 1).astype(np.uint8) << 7
        encoded = ((wide[..., None] >> shifts) & np.uint64(0x7F)).astype(np.uint8) | more
    flat = encoded[np.arange(encoded.shape[-1]) < counts[..., None]].tobytes()
    ends = np.cumsum(counts.sum(1)).tolist()
    return [flat[s:e] for s, e in zip([0] + ends[:-1], ends)]


@functools.lru_cache(maxsize=1024)
def _entry_header(key, kind_tag, payload_length):
    """Bytes before a packed payload in one map<string, Feature> entry of tf.train.Features."""
    value_list = 1 + len(_varint(payload_length)) + payload_length
    feature_header = kind_tag + _varint(value_list) + b"\x0a" + _varint(payload_length)
    feature_length = len(feature_header) + payload_length
    entry_length = 1 + len(_varint(len(key))) + len(key) + 1 + len(_varint(feature_length)) + feature_length
    return (b"\x0a" + _varint(entry_length) + b"\x0a" + _varint(len(key)) + key + b"\x12" +
            _varint(feature_length) + feature_header)


def serialize_examples(features):
    """{name: int or float array [N, ...]} -> N serialized tf.train.Example (packed lists, in key order).

    Equivalent to ``records.to_example(...).SerializeToString()`` (tests check they parse to
    equal messages) but vectorized: per-value Python work is what makes the reference slow.
    """
    columns = []
    for name, array in features.items():
        array = np.asarray(array)
        rows = array.reshape(len(array), -1)
        key = name.encode("utf-8")
        if array.dtype.kind == "f":
            width = rows.shape[1] * 4
            flat = rows.astype("<f4").tobytes()
            payloads = [flat[i:i + width] for i in range(0, len(flat), width)]
            tag = b"\x12"
        else:
            payloads = _packed_varints(rows)
            tag = b"\x1a"
        columns.append([_entry_header(key, tag, len(p)) for p in payloads])
        columns.append(payloads)
    out = []
    for pieces in zip(*columns):
        body = b"".join(pieces)
        out.append(b"\x0a" + _varint(len(body)) + body)
    return out


# ---- tasks and workers -------------------------------------------------------------------------



def _task_seeds(settings, dupe, task):
    return (settings.random_seed << 64) + (dupe << 32) + task, [settings.random_seed, dupe, task]


def run_task(corpus, settings, vocab, dupe, task, documents):
    """Serialized instances of ``documents`` in duplication round ``dupe`` (deterministic per task)."""
    py_seed, np_seed = _task_seeds(settings, dupe, task)
    rng = random.Random(py_seed)
    nrng = np.random.default_rng(np_seed)
    spans = []
    for doc in documents:
        _document_instances(corpus, doc, settings, rng, spans)
    if not spans:
        return []
    ids, segments, lengths, labels, continuation = _pack(corpus, spans, settings, vocab, rng)
    input_mask = (np.arange(settings.max_seq_length) < lengths[:, None]).astype(np.int64)
    order = nrng.permutation(len(spans))
    features = collections.OrderedDict()
    if settings.dynamic_masking:
        features["input_ids"] = ids
    else:
        masked, positions, originals, weights = mask_instances(ids, lengths, settings, vocab, nrng, continuation)
        features["input_ids"] = masked
    features["input_mask"] = input_mask
    features["segment_ids"] = segments
    if not settings.dynamic_masking:
        features["masked_lm_positions"] = positions
        features["masked_lm_ids"] = originals
        features["masked_lm_weights"] = weights
    features["next_sentence_labels"] = labels[:, None]
    return serialize_examples({k: v[order] for k, v in features.items()})


def _worker_task(args):
    dupe, task, documents = args
    return run_task(_STATE["corpus"], _STATE["settings"], _STATE["vocab"], dupe, task, documents)


def make_tasks(num_documents, settings):
    """(round, task index, documents) in output order: documents shuffled per round, then chunked."""
    for dupe in range(settings.dupe_factor):
        order = np.random.default_rng([settings.random_seed, dupe]).permutation(num_documents)
        for task, lo in enumerate(range(0, num_documents, DOCS_PER_TASK)):
            yield dupe, task, order[lo:lo + DOCS_PER_TASK]


def _serialized_stream(corpus, settings, vocab, num_workers, bar, counters):
    tasks = list(make_tasks(corpus.num_documents, settings))
    started = time.time()
    if num_workers <= 1:
        results = (run_task(corpus, settings, vocab, *args) for args in tasks)
    else:
        results = _ordered_map(_worker_task, ((args,) for args in tasks), num_workers,
                               {"corpus": corpus, "settings": settings, "vocab": vocab})
    for (_, _, documents), result in zip(tasks, results):
        counters["instances"] += len(result)
        counters["documents"] += len(documents)
        bar.update(counters["documents"])
        bar.set_postfix(instances_per_s=counters["instances"] / max(time.time() - started, 1e-9))
        yield from result


def create_pretraining_data(input_files, output_file, tokenizer, settings, num_output_shards=1, num_workers=1,
                            gzip=False, verbose=True, encoding=None):
    """The whole conversion; returns statistics (documents, instances, skipped lines, ...)."""
    settings.validate()
    if num_workers < 1:
        raise UserError(f"--num_workers={num_workers} must be at least 1")
    files = fileio.expand_inputs(input_files) if isinstance(input_files, str) else list(input_files)
    if "fork" not in multiprocessing.get_all_start_methods():
        num_workers = 1  # workers share the corpus by forking
    begun = time.time()
    corpus = read_corpus(files, tokenizer, settings.max_seq_length, verbose=verbose,
                         pre_segmented=settings.pre_segmented, encoding=encoding)
    tokenized = time.time()
    vocab = VocabInfo.from_tokenizer(tokenizer)
    counters = collections.Counter()
    bar = progress.Bar(corpus.num_documents * settings.dupe_factor, unit="doc", desc="instances", enabled=verbose)
    started = time.time()
    try:
        written = records.write_records(output_file, _serialized_stream(corpus, settings, vocab, num_workers, bar,
                                                                        counters),
                                        num_shards=num_output_shards, compression="GZIP" if gzip else None)
    finally:
        bar.close()
    finished = time.time()
    stats = dict(corpus.stats, instances=written, seconds=round(finished - begun, 3),
                 tokenize_seconds=round(tokenized - begun, 3), instances_seconds=round(finished - started, 3),
                 instances_per_second=written / max(finished - begun, 1e-9))
    return stats


# ---- reading records back ----------------------------------------------------------------------

def feature_spec(max_seq_length, max_predictions_per_seq, dynamic_masking=False):
    """Parsing spec of our (and google-research/bert's) pretraining records."""
    spec = records.fixed_int_spec(SEQUENCE_FEATURES, max_seq_length)
    spec["next_sentence_labels"] = tf.io.FixedLenFeature([1], tf.int64)
    if not dynamic_masking:
        spec.update(records.fixed_int_spec(("masked_lm_positions", "masked_lm_ids"), max_predictions_per_seq))
        spec["masked_lm_weights"] = tf.io.FixedLenFeature([max_predictions_per_seq], tf.float32)
    return spec


def inspect_records(path, compression=None):
    """Feature names and lengths of the first record of ``path`` (to check S, P and masking up front)."""
    try:
        for raw in tf.data.TFRecordDataset(path, compression_type=compression or "").take(1):
            example = tf.train.Example.FromString(raw.numpy())
            lengths = {}
            for name, feature in example.features.feature.items():
                kind = feature.WhichOneof("kind")
                lengths[name] = len(getattr(feature, kind).value)
            return lengths
    except tf.errors.DataLossError:
        raise UserError(f"TFRecord file {path} is corrupt at record 0 (or compressed: pass --gzip "
                        "to match how it was written)") from None
    raise UserError(f"TFRecord file {path} holds no records: regenerate it with tools/create_pretraining_data.py")


def check_records(path, max_seq_length, max_predictions_per_seq, dynamic_masking, compression=None):
    """Fails early, naming the file and the fix, when records do not match the flags."""
    lengths = inspect_records(path, compression)
    missing = [name for name in SEQUENCE_FEATURES + ("next_sentence_labels",) if name not in lengths]
    if missing:
        raise UserError(f"{path} lacks features {missing}: it is not a pretraining record file")
    has_masks = "masked_lm_positions" in lengths
    if dynamic_masking and has_masks:
        raise UserError(f"{path} holds masked records but --dynamic_masking is set: regenerate with "
                        "tools/create_pretraining_data.py --dynamic_masking, or drop the flag")
    if not dynamic_masking and not has_masks:
        raise UserError(f"{path} holds unmasked records (written with --dynamic_masking): pass --dynamic_masking")
    if dynamic_masking and max_predictions_per_seq > max_seq_length:
        raise UserError(f"--max_predictions_per_seq={max_predictions_per_seq} exceeds --max_seq_length="
                        f"{max_seq_length}: a sequence has no more tokens to mask; lower --max_predictions_per_seq")
    if lengths["input_ids"] != max_seq_length:
        raise UserError(f"{path} has sequences of length {lengths['input_ids']} but --max_seq_length="
                        f"{max_seq_length}: pass --max_seq_length={lengths['input_ids']}")
    if has_masks and lengths["masked_lm_positions"] != max_predictions_per_seq:
        raise UserError(f"{path} has {lengths['masked_lm_positions']} predictions per sequence but "
                        f"--max_predictions_per_seq={max_predictions_per_seq}: pass "
                        f"--max_predictions_per_seq={lengths['masked_lm_positions']}")
    return lengths


def mask_batch(features, seed, vocab_size, mask_id, cls_id, sep_id, max_predictions_per_seq, masked_lm_prob=0.15):
    """Dynamic masking in graph for a batch of unmasked records (model-side names).

    ``seed`` is an int64 [2] tensor (one per batch from ``tf.data.Dataset.random``), so every epoch
    draws new masks while a rerun with the same seed replays the same stream. Token-level (not
    whole-word) masking with the same rules as ``mask_instances``.
    """
    ids = features["input_ids"]
    attention = features["attention_mask"]
    shape = tf.shape(ids)
    limit = max_predictions_per_seq
    seeds = tf.random.experimental.stateless_split(seed, 4)
    candidate = (attention > 0) & tf.not_equal(ids, cls_id) & tf.not_equal(ids, sep_id)
    lengths = tf.reduce_sum(attention, axis=1)
    target = tf.minimum(limit, tf.maximum(1, tf.cast(tf.round(tf.cast(lengths, tf.float64) * masked_lm_prob),
                                                       tf.int32)))
    keys = tf.random.stateless_uniform(shape, seeds[0])
    keys = tf.where(candidate, keys, 2.0)
    # The `limit` candidates with the smallest keys, of which the first `target` are used.
    neg_keys, picked = tf.math.top_k(-keys, k=limit)
    rank = tf.range(limit)[None, :]
    valid = (rank < target[:, None]) & (neg_keys > -2.0)
    picked = tf.where(valid, picked, shape[1])
    picked = tf.sort(picked, axis=1)
    valid = picked < shape[1]
    positions = tf.where(valid, picked, 0)
    originals = tf.where(valid, tf.gather(ids, positions, batch_dims=1), 0)
    draw = tf.random.stateless_uniform(tf.shape(positions), seeds[1])
    random_ids = tf.random.stateless_uniform(tf.shape(positions), seeds[2], minval=0, maxval=vocab_size,
                                             dtype=tf.int32)
    replaced = tf.where(draw < 0.8, tf.cast(mask_id, ids.dtype),
                        tf.where(draw < 0.9, originals, tf.cast(random_ids, ids.dtype)))
    batch_index = tf.broadcast_to(tf.range(shape[0])[:, None], tf.shape(positions))
    indices = tf.stack([tf.boolean_mask(batch_index, valid), tf.boolean_mask(positions, valid)], axis=1)
    masked = tf.tensor_scatter_nd_update(ids, indices, tf.boolean_mask(replaced, valid))
    result = dict(features)
    result.update(input_ids=masked, masked_lm_positions=positions, masked_lm_ids=originals,
                  masked_lm_weights=tf.cast(valid, tf.float32))
    return result


# ---- the create_pretraining_data job -----------------------------------------------------------

def define_flags(fv):
    """Flags of tools/create_pretraining_data.py (google-research/bert names and defaults)."""
    from absl import flags as f

    from bert_tf import flags as flag_groups

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
    f.DEFINE_string("encoding", None, flag_groups.ENCODING_HELP, flag_values=fv)
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
    flag_groups.check_ranges(fv)


def settings_from(flags):
    return Settings(max_seq_length=flags.max_seq_length, max_predictions_per_seq=flags.max_predictions_per_seq,
                    random_seed=flags.random_seed, dupe_factor=flags.dupe_factor,
                    masked_lm_prob=flags.masked_lm_prob, short_seq_prob=flags.short_seq_prob,
                    do_whole_word_mask=flags.do_whole_word_mask, dynamic_masking=flags.dynamic_masking,
                    pre_segmented=flags.pre_segmented)


def run(flags, verbose=True):
    """The create_pretraining_data job; returns its statistics."""
    if not flags.input_file:
        raise UserError("--input_file is required: comma-separated text files or globs")
    if not flags.output_file:
        raise UserError("--output_file is required")
    for output in records.shard_paths(flags.output_file, flags.num_output_shards or 1):
        fileio.check_outputs_apart({"--output_file": output},
                                   {"--input_file": flags.input_file, "--vocab_file": flags.vocab_file})
    settings = settings_from(flags)
    settings.validate()
    tokenizer = HostTokenizer(flags.vocab_file, do_lower_case=flags.do_lower_case)
    return create_pretraining_data(flags.input_file, flags.output_file, tokenizer, settings,
                                   num_output_shards=flags.num_output_shards, num_workers=flags.num_workers,
                                   gzip=flags.gzip, verbose=verbose, encoding=flags.encoding)
