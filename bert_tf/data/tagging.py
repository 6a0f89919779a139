"""CoNLL token-tag files -> sentences -> word-piece features with one label per word -> cached TFRecords.

Two layouts are read: ``token<TAB>tag`` and CoNLL-2003's space-separated ``token POS chunk NER``
(the first and last columns are used). A blank line ends a sentence; ``-DOCSTART-`` lines are
skipped. Only the first word piece of a word carries its label; the others, the special tokens
and the padding get ``IGNORE_LABEL``, so loss and metrics count each word once.
"""
import dataclasses

import numpy as np
import tensorflow as tf

from bert_tf import fileio
from bert_tf.data import classification, records, text_files
from bert_tf.errors import UserError

IGNORE_LABEL = -100  # label id of positions the tagging loss and metrics skip (Hugging Face's convention)

# A word whose gold tag is not in the label set: its first piece gets this id, so it is known to be a
# word start (its prediction is written out) but it is left out of the loss, like IGNORE_LABEL.
UNKNOWN_TAG = -1


@dataclasses.dataclass
class Sentence:
    words: list
    tags: list = None  # None when the file has no tag column
    line: int = 0  # line number of the first word


def _fields(line):
    return line.split("\t") if "\t" in line else line.split()


def read_conll(path, require_tags=True, encoding=None):
    """Reads a CoNLL file; every token line must have as many fields as the file's first one.

    A token line whose columns are split by a full-width (or other non-ASCII) space instead of a
    tab is an error naming the lines: such spaces are common in Chinese files and easy to miss.
    """
    fileio.require_file(path, "CoNLL file", "check --train_file/--dev_file/--test_file")
    lines = text_files.read_lines(path, encoding)
    tab_like = text_files.tab_like_lines([line.strip() for line in lines])
    if tab_like:
        raise text_files.tab_like_error(path, tab_like)
    sentences, words, tags, first_line, width = [], [], [], 0, None

    def close():
        if words:
            sentences.append(Sentence(list(words), list(tags) if width != 1 else None, first_line))
        words.clear()
        tags.clear()

    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            close()
            continue
        if stripped.startswith("-DOCSTART-"):
            close()
            continue
        fields = [f.strip() for f in _fields(line.rstrip("\r\n"))]
        if width is None:
            width = len(fields)
            allowed = (2, 4) if require_tags else (1, 2, 4)
            if width not in allowed:
                raise UserError(f"{path} line {number} has {width} fields: expected token<TAB>tag or CoNLL-2003 "
                                "'token POS chunk NER'" + ("" if require_tags else " (or one token per line)"))
        elif len(fields) != width:
            raise UserError(f"{path} line {number} has {len(fields)} fields but earlier lines have {width}: fix the "
                            "line (token<TAB>tag, a blank line between sentences)")
        if not fields[0]:
            raise UserError(f"{path} line {number} has an empty token: remove the line or fill in the token")
        if not words:
            first_line = number
        words.append(fields[0])
        tags.append(fields[-1])
    close()
    if not sentences:
        raise UserError(f"{path} holds no sentences: expected token<TAB>tag lines with blank lines between "
                        "sentences")
    return sentences


def label_list_from(sentences):
    return sorted({tag for s in sentences for tag in s.tags})


def feature_spec(max_seq_length):
    return records.fixed_int_spec(("input_ids", "input_mask", "segment_ids", "label_ids"), max_seq_length)


SEQUENCE_KEYS = ("input_ids", "attention_mask", "token_type_ids", "label_ids")


def encode_sentences(sentences, tokenizer, max_seq_length, label_list):
    """Yields (features dict of int64 [max_seq_length], number of words kept) per sentence.

    Words the tokenizer turns into nothing (stray control characters) become one ``[UNK]`` so
    every word keeps a position and a prediction.
    """
    label_map = {tag: i for i, tag in enumerate(label_list or [])}
    budget = max_seq_length - 2
    for sentence, (ids, _, word_ids) in zip(sentences, tokenizer.tokenize_words([s.words for s in sentences])):
        pieces = [[] for _ in sentence.words]
        for piece, word in zip(ids, word_ids):
            pieces[word].append(piece)
        input_ids, label_ids, kept = [tokenizer.cls_id], [IGNORE_LABEL], 0
        for index, word_pieces in enumerate(pieces):
            word_pieces = word_pieces or [tokenizer.unk_id]
            if len(input_ids) - 1 + len(word_pieces) > budget:
                break
            tag = sentence.tags[index] if sentence.tags else None
            label_ids.append(label_map.get(tag, UNKNOWN_TAG))
            label_ids.extend([IGNORE_LABEL] * (len(word_pieces) - 1))
            input_ids.extend(word_pieces)
            kept += 1
        input_ids.append(tokenizer.sep_id)
        label_ids.append(IGNORE_LABEL)
        length = len(input_ids)
        features = {"input_ids": np.full(max_seq_length, tokenizer.pad_id, np.int64),
                    "input_mask": np.zeros(max_seq_length, np.int64),
                    "segment_ids": np.zeros(max_seq_length, np.int64),
                    "label_ids": np.full(max_seq_length, IGNORE_LABEL, np.int64)}
        features["input_ids"][:length] = input_ids
        features["input_mask"][:length] = 1
        features["label_ids"][:length] = label_ids
        yield features, kept


def convert_to_records(sentences, tokenizer, max_seq_length, output_file, label_list, batch_size=1024):
    """Writes sentences as TFRecords; returns stats (sentences, truncated sentences/words, unseen tags)."""
    known = set(label_list or [])
    stats = {"num_examples": len(sentences), "truncated": 0, "truncated_words": 0, "unseen_labels": 0,
             "unseen_label_values": []}

    def serialized():
        for start in range(0, len(sentences), batch_size):
            chunk = sentences[start:start + batch_size]
            for sentence, (features, kept) in zip(chunk, encode_sentences(chunk, tokenizer, max_seq_length,
                                                                           label_list)):
                if kept < len(sentence.words):
                    stats["truncated"] += 1
                    stats["truncated_words"] += len(sentence.words) - kept
                for tag in sentence.tags or []:
                    if tag not in known:
                        stats["unseen_labels"] += 1
                        if tag not in stats["unseen_label_values"] and len(stats["unseen_label_values"]) < classification.MAX_UNSEEN_LABELS_SHOWN:
                            stats["unseen_label_values"].append(tag)
                yield records.to_example(features)

    records.write_records(output_file, serialized())
    return stats


def cached_records(sentences, source_paths, cache_dir, split, tokenizer, max_seq_length, label_list):
    """Converts once per (file contents, settings); returns (records path, stats)."""
    settings = {"task": "tagging", "max_seq_length": max_seq_length, "labels": label_list, "count": len(sentences)}
    return records.cached_conversion(
        cache_dir, split, source_paths, settings,
        lambda path: convert_to_records(sentences, tokenizer, max_seq_length, path, label_list),
        items=sentences, tokenizer=tokenizer)


def word_predictions(label_ids, logits, label_list, num_words, fallback):
    """Per-sentence predicted tags from model outputs: the argmax at each word's first piece.

    ``label_ids`` marks word starts (anything but IGNORE_LABEL); words cut by truncation get
    ``fallback``.
    """
    predicted = np.argmax(logits, axis=-1)
    result = []
    for row, count in enumerate(num_words):
        starts = np.flatnonzero(label_ids[row] != IGNORE_LABEL)
        tags = [label_list[i] for i in predicted[row, starts][:count]]
        result.append(tags + [fallback] * (count - len(tags)))
    return result
