"""Pretraining instances: documents -> [CLS] A [SEP] B [SEP] sequences with next-sentence labels.

google-research/bert's packing, on a ``pretraining_corpus.Corpus``'s flat arrays: spans of token
ranges are drawn per document with Python's ``random`` (cheap scalar draws), then packed into
[N, S] id and segment arrays with numpy. A pair too long for the sequence is cut with
``tokenization.truncated_lengths``, the rule fine-tuning inputs use too.
"""
import numpy as np

from bert_tf.tokenization import truncated_lengths


def document_spans(corpus, doc, settings, rng, out):
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


def pack(corpus, spans, settings, vocab, rng):
    """Instances -> ids/segments [N, S], lengths [N], labels [N], word continuation [N, S] (None unless the
    corpus is pre-segmented) with random front/back truncation."""
    seq = settings.max_seq_length
    spans = np.asarray(spans, np.int64).reshape(-1, 5)
    n = len(spans)
    a_lo, a_hi, b_lo, b_hi, labels = spans.T
    a_len, b_len = a_hi - a_lo, b_hi - b_lo
    keep_a, keep_b = truncated_lengths(a_len, b_len, seq - 3)
    fronts = np.zeros((n, 2), np.int64)
    # Each dropped token comes off the front or the back with probability 1/2, drawn row by row
    # in order so a task's bytes depend on its seed alone.
    cut = keep_a + keep_b < a_len + b_len
    draw = rng.getrandbits
    drawn = [(draw(cut_a).bit_count() if cut_a else 0, draw(cut_b).bit_count() if cut_b else 0)
             for cut_a, cut_b in zip((a_len - keep_a)[cut].tolist(), (b_len - keep_b)[cut].tolist())]
    fronts[cut] = np.asarray(drawn, np.int64).reshape(-1, 2)
    a_start, b_start = a_lo + fronts[:, 0], b_lo + fronts[:, 1]
    a_len, b_len = keep_a, keep_b
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

