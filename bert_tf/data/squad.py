"""SQuAD v1.1/v2.0 JSON -> question/context examples -> doc-stride windows -> TFRecords, and back to answers.

Spans are tracked in characters of the original context: every context word piece carries its
character offsets (``HostTokenizer.tokenize_with_offsets``), so a gold answer's characters map
to a piece span and a predicted piece span maps back to the exact original substring, with
no re-alignment heuristics.

Long contexts are cut into windows of ``max_seq_length`` (``[CLS] question [SEP] context piece
[SEP]``) that start ``doc_stride`` pieces apart. A window that does not hold the whole answer
is trained to point at ``[CLS]`` (position 0), like an unanswerable question. At decoding, a
piece's score only counts in the window where it has the most context on both sides.
"""
import collections
import dataclasses
import json
import math

import numpy as np
import tensorflow as tf

from bert_tf import fileio
from bert_tf.data import records, text_files
from bert_tf.errors import UserError


@dataclasses.dataclass
class SquadExample:
    qas_id: str
    question: str
    context: str
    answers: list  # every gold answer text; empty for an unanswerable question
    answer_start: int = None  # character start of the training answer (the first one)
    answer_text: str = None
    is_impossible: bool = False


@dataclasses.dataclass
class Window:
    """One model input cut from an example, with what decoding needs to map positions back."""
    example_index: int
    input_ids: np.ndarray
    input_mask: np.ndarray
    segment_ids: np.ndarray
    start_position: int
    end_position: int
    context_start: int  # position of the window's first context piece
    piece_offsets: list  # (char_start, char_end) of each context piece in the window
    max_context: list  # whether each context piece has its most context in this window


def read_squad(path, is_training, version_2_with_negative=False, encoding=None):
    """Returns (examples, number of training answers skipped because the text is not at answer_start).

    ``answer_start`` counts characters (code points) of the context, so Chinese offsets are
    character positions, as SQuAD-format Chinese data sets (CMRC 2018, DRCD) give them.
    """
    fileio.require_file(path, "SQuAD file", "check --train_file/--dev_file/--predict_file")
    try:
        data = json.loads(text_files.read_text(path, encoding))["data"]
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid UTF-8 JSON ({str(error)[:80]}): expected SQuAD JSON") from None
    except (KeyError, TypeError):
        raise UserError(f"{path} has no top-level 'data' list: expected SQuAD JSON "
                        "({'data': [{'paragraphs': [...]}]})") from None
    try:
        examples, skipped = _squad_examples(path, data, is_training, version_2_with_negative)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise UserError(f"{path} is not SQuAD JSON ({type(error).__name__}: {str(error)[:80]}): each of 'data' "
                        "needs 'paragraphs' with a string 'context' and 'qas' of {'id', 'question', 'answers': "
                        "[{'text', 'answer_start': <int>}]}") from None
    counts = collections.Counter(e.qas_id for e in examples)
    duplicates = sorted(qas_id for qas_id, count in counts.items() if count > 1)
    if duplicates:
        raise UserError(f"{path} repeats question ids {duplicates[:5]}{' ...' if len(duplicates) > 5 else ''}: "
                        "each question needs its own id, or its predictions and scores overwrite each other")
    if not examples:
        raise UserError(f"{path} holds no usable questions (skipped {skipped} whose answer text is not at "
                        "answer_start)")
    return examples, skipped


def _squad_examples(path, data, is_training, version_2_with_negative):
    if not isinstance(data, list):
        raise TypeError("'data' must be a list of articles")
    examples, skipped = [], 0
    for article in data:
        for paragraph in article.get("paragraphs", []):
            context = paragraph["context"]
            if not isinstance(context, str):
                raise TypeError("'context' must be a string")
            for qa in paragraph["qas"]:
                if not isinstance(qa["id"], (str, int)) or not isinstance(qa["question"], str):
                    raise TypeError("'id' and 'question' must be strings")
                gold = [a["text"] for a in qa.get("answers", [])]
                impossible = bool(qa.get("is_impossible", False)) or (version_2_with_negative and not gold)
                if impossible and not version_2_with_negative:
                    raise UserError(f"{path} question {qa['id']} is unanswerable (SQuAD v2.0): pass "
                                    "--version_2_with_negative")
                example = SquadExample(qa["id"], qa["question"], context, [] if impossible else gold,
                                       is_impossible=impossible)
                if is_training and not impossible:
                    if not gold:
                        raise UserError(f"{path} question {qa['id']} has no answer: training needs one, or pass "
                                        "--version_2_with_negative for unanswerable questions")
                    start, text = qa["answers"][0]["answer_start"], qa["answers"][0]["text"]
                    if isinstance(start, bool) or not isinstance(start, int) or not isinstance(text, str):
                        raise ValueError(f"question {qa['id']}: answer_start must be an integer, text a string")
                    if context[start:start + len(text)] != text:
                        # The reference skips such answers too (they come from bad offsets in the data).
                        skipped += 1
                        continue
                    example.answer_start, example.answer_text = start, text
                examples.append(example)
    return examples, skipped


def _max_context(spans, span_index, position):
    """Whether piece ``position`` sees the most context (min of left and right, ties to longer) in this span."""
    best_score, best_index = None, None
    for index, (start, length) in enumerate(spans):
        if not start <= position < start + length:
            continue
        score = min(position - start, start + length - 1 - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best_index = score, index
    return best_index == span_index


def doc_spans(num_pieces, max_pieces, doc_stride):
    """(start, length) windows over ``num_pieces`` context pieces, ``doc_stride`` apart, the last reaching the end."""
    spans, start = [], 0
    while True:
        length = min(num_pieces - start, max_pieces)
        spans.append((start, length))
        if start + length >= num_pieces:
            return spans
        start += min(length, doc_stride)


def convert_examples(examples, tokenizer, max_seq_length, doc_stride, max_query_length, is_training):
    """Cuts examples into windows; returns (windows, stats)."""
    if doc_stride <= 0:
        raise UserError(f"--doc_stride={doc_stride} must be positive")
    questions = tokenizer.tokenize_ids([e.question for e in examples])
    contexts = tokenizer.tokenize_with_offsets([e.context for e in examples])
    windows = []
    stats = {"num_examples": len(examples), "num_windows": 0, "truncated_questions": 0,
             "answers_outside_windows": 0}
    for index, (example, query, (context_ids, offsets)) in enumerate(zip(examples, questions, contexts)):
        if len(query) > max_query_length:
            stats["truncated_questions"] += 1
            query = query[:max_query_length]
        max_pieces = max_seq_length - len(query) - 3
        if max_pieces < 1:
            raise UserError(f"--max_seq_length={max_seq_length} leaves no room for the context after a "
                            f"{len(query)}-piece question: raise it or lower --max_query_length")
        answer_pieces = None
        if is_training and not example.is_impossible:
            answer_end = example.answer_start + len(example.answer_text)
            inside = [i for i, (s, e) in enumerate(offsets) if s < answer_end and e > example.answer_start]
            answer_pieces = (inside[0], inside[-1]) if inside else None
            if answer_pieces is None:
                stats["answers_outside_windows"] += 1
        spans = doc_spans(len(context_ids), max_pieces, doc_stride)
        context_start = len(query) + 2
        for span_index, (start, length) in enumerate(spans):
            ids = [tokenizer.cls_id] + list(query) + [tokenizer.sep_id] + list(context_ids[start:start + length]) \
                + [tokenizer.sep_id]
            input_ids = np.full(max_seq_length, tokenizer.pad_id, np.int64)
            input_ids[:len(ids)] = ids
            input_mask = np.zeros(max_seq_length, np.int64)
            input_mask[:len(ids)] = 1
            segment_ids = np.zeros(max_seq_length, np.int64)
            segment_ids[context_start:len(ids)] = 1
            start_position = end_position = 0
            if answer_pieces and start <= answer_pieces[0] and answer_pieces[1] < start + length:
                start_position = answer_pieces[0] - start + context_start
                end_position = answer_pieces[1] - start + context_start
            windows.append(Window(index, input_ids, input_mask, segment_ids, start_position, end_position,
                                  context_start, list(offsets[start:start + length]),
                                  [_max_context(spans, span_index, start + i) for i in range(length)]))
    stats["num_windows"] = len(windows)
    return windows, stats


def feature_spec(max_seq_length):
    spec = records.fixed_int_spec(("input_ids", "input_mask", "segment_ids"), max_seq_length)
    spec.update(records.fixed_int_spec(("start_positions", "end_positions"), 1))
    return spec


def write_windows(windows, output_file):
    return records.write_records(output_file, (records.to_example({
        "input_ids": w.input_ids, "input_mask": w.input_mask, "segment_ids": w.segment_ids,
        "start_positions": [w.start_position], "end_positions": [w.end_position]}) for w in windows))


def cached_records(windows, stats, source_paths, cache_dir, split, tokenizer, settings):
    """Writes the windows' TFRecords once per (file contents, settings); returns (path, stats)."""
    # Windows follow from the file's bytes, the tokenizer and the window settings, all in the key;
    # hashing the windows themselves (ids of every window) would cost more than converting.
    settings = dict(settings, task="squad", count=len(windows))

    def convert(path):
        write_windows(windows, path)
        return stats

    return records.cached_conversion(cache_dir, split, source_paths, settings, convert, tokenizer=tokenizer)


def _top_indexes(logits, n):
    return [int(i) for i in np.argsort(-np.asarray(logits), kind="stable")[:n]]


def _softmax(scores):
    if not scores:
        return []
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def decode(examples, windows, start_logits, end_logits, n_best_size=20, max_answer_length=30,
           version_2_with_negative=False, null_score_diff_threshold=0.0):
    """Best answer per question from per-window logits.

    Returns (predictions {id: text}, nbest {id: [{text, probability, start_logit, end_logit}]},
    null_odds {id: null score minus best span score} (v2 only, else empty)).
    """
    by_example = collections.defaultdict(list)
    for row, window in enumerate(windows):
        by_example[window.example_index].append(row)
    predictions, nbest_all, null_odds = {}, collections.OrderedDict(), {}
    for index, example in enumerate(examples):
        candidates, null_score, null_logits = [], None, None
        for row in by_example.get(index, []):
            window, starts, ends = windows[row], start_logits[row], end_logits[row]
            score_null = float(starts[0] + ends[0])
            if null_score is None or score_null < null_score:
                null_score, null_logits = score_null, (float(starts[0]), float(ends[0]))
            first, count = window.context_start, len(window.piece_offsets)
            for start in _top_indexes(starts, n_best_size):
                for end in _top_indexes(ends, n_best_size):
                    if not (first <= start < first + count and first <= end < first + count):
                        continue
                    if end < start or end - start + 1 > max_answer_length or \
                            not window.max_context[start - first]:
                        continue
                    char_start = window.piece_offsets[start - first][0]
                    char_end = window.piece_offsets[end - first][1]
                    candidates.append((float(starts[start] + ends[end]), float(starts[start]), float(ends[end]),
                                       example.context[char_start:char_end]))
        candidates.sort(key=lambda c: -c[0])
        entries, seen = [], set()
        for score, start_logit, end_logit, text in candidates:
            if len(entries) >= n_best_size:
                break
            if text in seen:
                continue
            seen.add(text)
            entries.append((score, start_logit, end_logit, text))
        best_span = entries[0] if entries else None
        if version_2_with_negative and null_score is not None:
            # The null answer is always listed, as the reference does, so its score can be inspected.
            entries.append((null_score, null_logits[0], null_logits[1], ""))
            entries.sort(key=lambda e: -e[0])
        if not entries:
            entries = [(0.0, 0.0, 0.0, "empty")]
        probabilities = _softmax([e[0] for e in entries])
        nbest_all[example.qas_id] = [{"text": text, "probability": p, "start_logit": s, "end_logit": e}
                                     for (_, s, e, text), p in zip(entries, probabilities)]
        if not version_2_with_negative:
            predictions[example.qas_id] = entries[0][3]
            continue
        difference = null_score - best_span[0] if best_span else float("inf")
        null_odds[example.qas_id] = difference
        predictions[example.qas_id] = "" if difference > null_score_diff_threshold else best_span[3]
    return predictions, nbest_all, null_odds
