"""Pretraining data: raw text -> masked-LM + next-sentence TFRecords in the google-research/bert schema.

Output records carry exactly google-research/bert's features (``input_ids``, ``input_mask``,
``segment_ids``, ``masked_lm_positions``, ``masked_lm_ids``, ``masked_lm_weights``,
``next_sentence_labels`` with 1 = random next), so its files and ours are interchangeable. This
module runs the conversion; its steps live beside it: ``pretraining_corpus`` (reading and
tokenizing), ``pretraining_instances`` (packing sentence pairs), ``pretraining_masking`` (masked-LM
predictions), ``record_codec`` (serializing), ``pretraining_records`` (the schema read back) and
``dynamic_masking`` (masks drawn in training instead).

How it differs from the reference script, and why:
* Work is split into tasks of ``DOCS_PER_TASK`` documents per duplication round. Each task draws
  from its own generators seeded by (random_seed, round, task), so output is byte-identical for
  any ``--num_workers``; tasks run in forked worker processes and stream, in task order, into
  ``record_writer.write_records``.
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
``dynamic_masking.mask_batch`` draws new masks in the tf.data pipeline every epoch (RoBERTa-style).
"""
import collections
import dataclasses
import random
import time

import numpy as np

from bert_tf import fileio
from bert_tf.data import ordered_pool, pretraining_corpus, pretraining_instances, pretraining_masking, record_writer
from bert_tf.data.record_codec import serialize_examples
from bert_tf.errors import UserError
from bert_tf.training import progress

DOCS_PER_TASK = 64


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


def _task_seeds(settings, dupe, task):
    return (settings.random_seed << 64) + (dupe << 32) + task, [settings.random_seed, dupe, task]


def run_task(corpus, settings, vocab, dupe, task, documents):
    """Serialized instances of ``documents`` in duplication round ``dupe`` (deterministic per task)."""
    features = task_features(corpus, settings, vocab, dupe, task, documents)
    return serialize_examples(features) if features else []


def task_features(corpus, settings, vocab, dupe, task, documents):
    """{feature name: [N, ...] array} of the task's instances in output order; None when it has none."""
    py_seed, np_seed = _task_seeds(settings, dupe, task)
    rng = random.Random(py_seed)
    nrng = np.random.default_rng(np_seed)
    spans = []
    for doc in documents:
        pretraining_instances.document_spans(corpus, doc, settings, rng, spans)
    if not spans:
        return None
    ids, segments, lengths, labels, continuation = pretraining_instances.pack(corpus, spans, settings, vocab, rng)
    input_mask = (np.arange(settings.max_seq_length) < lengths[:, None]).astype(np.int64)
    order = nrng.permutation(len(spans))
    features = collections.OrderedDict()
    if settings.dynamic_masking:
        features["input_ids"] = ids
    else:
        masked, positions, originals, weights = pretraining_masking.mask_instances(ids, lengths, settings, vocab,
                                                                                   nrng, continuation)
        features["input_ids"] = masked
    features["input_mask"] = input_mask
    features["segment_ids"] = segments
    if not settings.dynamic_masking:
        features["masked_lm_positions"] = positions
        features["masked_lm_ids"] = originals
        features["masked_lm_weights"] = weights
    features["next_sentence_labels"] = labels[:, None]
    return collections.OrderedDict((name, values[order]) for name, values in features.items())


def _worker_task(args):
    dupe, task, documents = args
    state = ordered_pool.STATE
    return run_task(state["corpus"], state["settings"], state["vocab"], dupe, task, documents)


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
        results = ordered_pool.ordered_map(_worker_task, ((args,) for args in tasks), num_workers,
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
    if not ordered_pool.can_fork():
        num_workers = 1  # workers share the corpus by forking
    begun = time.time()
    corpus = pretraining_corpus.read_corpus(files, tokenizer, settings.max_seq_length, verbose=verbose,
                                            pre_segmented=settings.pre_segmented, encoding=encoding)
    tokenized = time.time()
    vocab = VocabInfo.from_tokenizer(tokenizer)
    counters = collections.Counter()
    bar = progress.Bar(corpus.num_documents * settings.dupe_factor, unit="doc", desc="instances", enabled=verbose)
    started = time.time()
    try:
        written = record_writer.write_records(output_file, _serialized_stream(corpus, settings, vocab, num_workers, bar,
                                                                        counters),
                                        num_shards=num_output_shards, compression="GZIP" if gzip else None)
    finally:
        bar.close()
    finished = time.time()
    stats = dict(corpus.stats, instances=written, seconds=round(finished - begun, 3),
                 tokenize_seconds=round(tokenized - begun, 3), instances_seconds=round(finished - started, 3),
                 instances_per_second=written / max(finished - begun, 1e-9))
    return stats
