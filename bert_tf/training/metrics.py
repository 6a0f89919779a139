"""Evaluation metrics on numpy arrays, with the names the result files use.

The scores themselves come from the libraries users already trust (scikit-learn for
classification, scipy for correlations, seqeval for entities); this module only picks the
variants our result files promise and names them.
"""
import collections
import re
import string

import numpy as np
import scipy.stats
import seqeval.metrics
import seqeval.scheme
import sklearn.metrics

from bert_tf import fileio


def confusion_matrix(labels, predictions, num_classes):
    return sklearn.metrics.confusion_matrix(labels, predictions, labels=np.arange(num_classes)).astype(np.int64)


def per_class_scores(matrix):
    """(precision, recall, f1, support) per class from a confusion matrix (rows = gold)."""
    matrix = np.asarray(matrix)
    gold, predicted = _pairs_of(matrix)
    precision, recall, f1, support = sklearn.metrics.precision_recall_fscore_support(
        gold, predicted, labels=np.arange(len(matrix)), zero_division=0)
    return precision, recall, f1, support.astype(np.int64)


def _pairs_of(matrix):
    """The (gold, predicted) label arrays a confusion matrix counts, so sklearn can score it."""
    rows, cols = np.nonzero(matrix)
    counts = matrix[rows, cols]
    return np.repeat(rows, counts), np.repeat(cols, counts)


def classification_metrics(labels, predictions, num_classes):
    """accuracy, macro P/R/F1 and MCC. Macro averages run over classes present in gold or predictions."""
    labels, predictions = np.asarray(labels, np.int64), np.asarray(predictions, np.int64)
    if not len(labels):
        return {"accuracy": 0.0, "precision_macro": 0.0, "recall_macro": 0.0, "f1_macro": 0.0, "mcc": 0.0,
                "num_examples": 0}
    present = np.union1d(labels, predictions)
    precision, recall, f1, _ = sklearn.metrics.precision_recall_fscore_support(
        labels, predictions, labels=present, average="macro", zero_division=0)
    return {
        "accuracy": float(sklearn.metrics.accuracy_score(labels, predictions)),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "f1_macro": float(f1),
        # sklearn's multi-class MCC is Gorodkin's R_K, equal to the binary formula for two classes.
        "mcc": float(sklearn.metrics.matthews_corrcoef(labels, predictions)),
        "num_examples": int(len(labels)),
    }


def classification_report(matrix, label_names):
    """Per-class precision/recall/F1/support as aligned text, from a confusion matrix."""
    matrix = np.asarray(matrix)
    precision, recall, f1, support = per_class_scores(matrix)
    width = max(12, max(len(str(n)) for n in label_names) + 2)
    lines = [f"{'label':<{width}} precision    recall  f1-score   support"]
    for i, name in enumerate(label_names):
        lines.append(f"{str(name):<{width}} {precision[i]:9.4f} {recall[i]:9.4f} {f1[i]:9.4f} {support[i]:9d}")
    total = support.sum()
    accuracy = np.trace(matrix) / total if total else 0.0
    lines.append(f"{'accuracy':<{width}} {'':9} {'':9} {accuracy:9.4f} {total:9d}")
    return "\n".join(lines) + "\n"


def _correlation(function, x, y):
    """scipy's coefficient, or 0.0 where it is undefined (fewer than two points or a constant side)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(function(x, y)[0])


def pearson(x, y):
    return _correlation(scipy.stats.pearsonr, x, y)


def regression_metrics(labels, predictions):
    labels, predictions = np.asarray(labels, np.float64), np.asarray(predictions, np.float64)
    return {
        "pearson": pearson(labels, predictions),
        "spearman": _correlation(scipy.stats.spearmanr, labels, predictions),
        "mse": float(sklearn.metrics.mean_squared_error(labels, predictions)) if len(labels) else 0.0,
        "num_examples": int(len(labels)),
    }


def save_confusion_matrix_png(matrix, label_names, path, title="Confusion matrix"):
    """Writes the confusion matrix as a PNG (counts in cells, gold on rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(4, 0.6 * len(label_names) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(matrix, cmap="Blues")
    # Labels are data, not markup: '$x$' or 'a_b^c' is drawn as written (mathtext would parse, or fail on, it).
    axes.set_xticks(range(len(label_names)), [str(n) for n in label_names], rotation=45, ha="right",
                    parse_math=False, usetex=False)
    axes.set_yticks(range(len(label_names)), [str(n) for n in label_names], parse_math=False, usetex=False)
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    axes.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), count in np.ndenumerate(matrix):
        axes.text(col, row, str(count), ha="center", va="center", color="white" if count > threshold else "black")
    figure.tight_layout()
    fileio.write_png(path, figure)
    plt.close(figure)


# ---- token tagging ------------------------------------------------------------------------------

def token_accuracy(gold_sequences, predicted_sequences):
    """Fraction of words whose predicted tag equals the gold tag, over all sentences."""
    total = correct = 0
    for gold, predicted in zip(gold_sequences, predicted_sequences):
        total += len(gold)
        correct += sum(g == p for g, p in zip(gold, predicted))
    return correct / total if total else 0.0


def tag_scheme(tags):
    """'BIOES' or 'BIO' when every tag is ``O`` or ``<prefix>-<type>`` of that scheme, else None."""
    prefixes = set()
    for tag in tags:
        if tag == "O":
            continue
        prefix, dash, kind = tag.partition("-")
        if not dash or not kind or prefix not in ("B", "I", "E", "S"):
            return None
        prefixes.add(prefix)
    if not prefixes:
        return None
    return "BIOES" if prefixes & {"E", "S"} else "BIO"


_SEQEVAL_SCHEMES = {"BIO": seqeval.scheme.IOB2, "BIOES": seqeval.scheme.IOBES}


def entity_spans(tags, scheme):
    """Strict entity spans {(type, start, end_exclusive)} of one tag sequence (seqeval, ``mode='strict'``):
    a span must open with B- (or be one S- in BIOES), continue with I- of the same type and, in BIOES,
    close with E-; anything else is no entity."""
    entities = seqeval.scheme.Entities([list(tags)], _SEQEVAL_SCHEMES[scheme]).entities[0]
    return {(entity.tag, entity.start, entity.end) for entity in entities}


def entity_scores(gold_sequences, predicted_sequences, scheme):
    """Micro precision/recall/F1 over exactly matching entity spans, plus per-type scores (seqeval strict)."""
    gold, predicted = [list(s) for s in gold_sequences], [list(s) for s in predicted_sequences]
    options = dict(mode="strict", scheme=_SEQEVAL_SCHEMES[scheme], zero_division=0)
    report = seqeval.metrics.classification_report(gold, predicted, output_dict=True, **options) \
        if any(entity_spans(s, scheme) for s in gold + predicted) else {}
    types = {kind: {"precision": float(row["precision"]), "recall": float(row["recall"]),
                    "f1": float(row["f1-score"]), "support": int(row["support"])}
             for kind, row in sorted(report.items()) if not kind.endswith(" avg")}
    return {"precision": float(seqeval.metrics.precision_score(gold, predicted, **options)),
            "recall": float(seqeval.metrics.recall_score(gold, predicted, **options)),
            "f1": float(seqeval.metrics.f1_score(gold, predicted, **options)),
            "per_type": types}


def tagging_metrics(gold_sequences, predicted_sequences, label_list=None):
    """token_accuracy always; entity precision/recall/f1 when the tags are BIO/BIOES, else None."""
    tags = list(label_list or []) + [t for sequence in gold_sequences for t in sequence]
    scheme = tag_scheme(set(tags))
    result = {"token_accuracy": token_accuracy(gold_sequences, predicted_sequences),
              "precision": None, "recall": None, "f1": None, "tag_scheme": scheme,
              "num_examples": len(gold_sequences),
              "num_tokens": sum(len(s) for s in gold_sequences)}
    if scheme:
        scores = entity_scores(gold_sequences, predicted_sequences, scheme)
        result.update(precision=scores["precision"], recall=scores["recall"], f1=scores["f1"],
                      per_type=scores["per_type"])
    return result


# ---- extractive QA (the official SQuAD v1.1/v2.0 evaluation) --------------------------------------

_PUNCTUATION = frozenset(string.punctuation)

def normalize_answer(text):
    """Lower-case, drop punctuation, the articles a/an/the and extra whitespace (official SQuAD rule)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def squad_exact(gold, predicted):
    return float(normalize_answer(gold) == normalize_answer(predicted))


def squad_f1(gold, predicted):
    """Token-overlap F1 of normalised answers; an empty answer only matches an empty one."""
    gold_tokens, predicted_tokens = normalize_answer(gold).split(), normalize_answer(predicted).split()
    if not gold_tokens or not predicted_tokens:
        return float(gold_tokens == predicted_tokens)
    common = sum((collections.Counter(gold_tokens) & collections.Counter(predicted_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_metrics(gold_answers, predictions):
    """Official-style scores in percent: exact_match, f1 (max over gold answers), num_examples.

    ``gold_answers`` maps question id -> list of gold texts (empty: unanswerable). When some
    questions are unanswerable, HasAns_*/NoAns_* split the scores as the v2.0 script does.
    """
    exact, f1, has_answer = {}, {}, {}
    for qas_id, golds in gold_answers.items():
        predicted = predictions.get(qas_id, "")
        has_answer[qas_id] = bool(golds)
        golds = golds or [""]
        exact[qas_id] = max(squad_exact(g, predicted) for g in golds)
        f1[qas_id] = max(squad_f1(g, predicted) for g in golds)

    def mean(values):
        return 100.0 * sum(values) / len(values) if values else 0.0

    result = {"exact_match": mean(list(exact.values())), "f1": mean(list(f1.values())),
              "num_examples": len(gold_answers)}
    if not all(has_answer.values()):
        for prefix, wanted in (("HasAns", True), ("NoAns", False)):
            ids = [i for i, has in has_answer.items() if has == wanted]
            result.update({f"{prefix}_exact": mean([exact[i] for i in ids]), f"{prefix}_f1": mean([f1[i] for i in ids]),
                           f"{prefix}_total": len(ids)})
    return result
