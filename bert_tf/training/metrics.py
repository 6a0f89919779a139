"""Evaluation metrics on numpy arrays, with the names the result files use."""
import collections
import re
import string

import numpy as np


def confusion_matrix(labels, predictions, num_classes):
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
    return matrix


def per_class_scores(matrix):
    """(precision, recall, f1, support) per class from a confusion matrix (rows = gold)."""
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
    recall = np.divide(true_positive, support, out=np.zeros_like(true_positive), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return precision, recall, f1, support.astype(np.int64)


def matthews_corrcoef(matrix):
    """Multi-class MCC (Gorodkin's R_K), equal to the binary formula for two classes."""
    matrix = matrix.astype(np.float64)
    total = matrix.sum()
    correct = np.trace(matrix)
    predicted, gold = matrix.sum(axis=0), matrix.sum(axis=1)
    numerator = correct * total - np.dot(predicted, gold)
    denominator = np.sqrt(total ** 2 - np.dot(predicted, predicted)) * np.sqrt(total ** 2 - np.dot(gold, gold))
    return float(numerator / denominator) if denominator > 0 else 0.0


def classification_metrics(labels, predictions, num_classes):
    """accuracy, macro P/R/F1 and MCC. Macro averages run over classes present in gold or predictions."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    matrix = confusion_matrix(labels, predictions, num_classes)
    precision, recall, f1, support = per_class_scores(matrix)
    present = (support > 0) | (matrix.sum(axis=0) > 0)
    return {
        "accuracy": float(np.mean(labels == predictions)) if len(labels) else 0.0,
        "precision_macro": float(precision[present].mean()) if present.any() else 0.0,
        "recall_macro": float(recall[present].mean()) if present.any() else 0.0,
        "f1_macro": float(f1[present].mean()) if present.any() else 0.0,
        "mcc": matthews_corrcoef(matrix),
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


def _rank(values):
    """Average ranks (ties share their mean rank), as Spearman's rho needs."""
    values = np.asarray(values, np.float64)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), np.float64)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2.0 + 1
        start = end + 1
    return ranks


def pearson(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else 0.0


def regression_metrics(labels, predictions):
    labels, predictions = np.asarray(labels, np.float64), np.asarray(predictions, np.float64)
    return {
        "pearson": pearson(labels, predictions),
        "spearman": pearson(_rank(labels), _rank(predictions)),
        "mse": float(np.mean((labels - predictions) ** 2)) if len(labels) else 0.0,
        "num_examples": int(len(labels)),
    }


def save_confusion_matrix_png(matrix, label_names, path, title="Confusion matrix"):
    """Writes the confusion matrix as a PNG (counts in cells, gold on rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bert_tf import fileio

    size = max(4, 0.6 * len(label_names) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(label_names)), [str(n) for n in label_names], rotation=45, ha="right")
    axes.set_yticks(range(len(label_names)), [str(n) for n in label_names])
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    axes.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), count in np.ndenumerate(matrix):
        axes.text(col, row, str(count), ha="center", va="center", color="white" if count > threshold else "black")
    figure.tight_layout()
    with fileio.atomic_path(path) as temp:
        figure.savefig(temp, format="png", dpi=100)
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


def entity_spans(tags, scheme):
    """Strict entity spans {(type, start, end_exclusive)} of one tag sequence.

    Strict as seqeval's ``mode='strict'``: a span must open with B- (or be one S- in BIOES),
    continue with I- of the same type and, in BIOES, close with E-; anything else is no entity.
    """
    spans, start, kind = set(), None, None
    for position, tag in enumerate(list(tags) + ["O"]):
        prefix, _, tag_kind = tag.partition("-") if tag != "O" else ("O", "", "")
        if scheme == "BIO":
            if start is not None and (prefix != "I" or tag_kind != kind):
                spans.add((kind, start, position))
                start = None
            if prefix == "B":
                start, kind = position, tag_kind
        else:
            if prefix == "S":
                spans.add((tag_kind, position, position + 1))
                start = None
            elif prefix == "B":
                start, kind = position, tag_kind
            elif prefix == "I" and start is not None and tag_kind == kind:
                pass
            elif prefix == "E" and start is not None and tag_kind == kind:
                spans.add((kind, start, position + 1))
                start = None
            else:
                start = None
    return spans


def entity_scores(gold_sequences, predicted_sequences, scheme):
    """Micro precision/recall/F1 over exactly matching entity spans, plus per-type scores."""
    found = gold_total = predicted_total = 0
    per_type = {}
    for gold, predicted in zip(gold_sequences, predicted_sequences):
        gold_spans, predicted_spans = entity_spans(gold, scheme), entity_spans(predicted, scheme)
        for spans, column in ((gold_spans, 0), (predicted_spans, 1), (gold_spans & predicted_spans, 2)):
            for kind, _, _ in spans:
                per_type.setdefault(kind, [0, 0, 0])[column] += 1
        found += len(gold_spans & predicted_spans)
        gold_total += len(gold_spans)
        predicted_total += len(predicted_spans)

    def prf(correct, num_gold, num_predicted):
        precision = correct / num_predicted if num_predicted else 0.0
        recall = correct / num_gold if num_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return precision, recall, f1

    precision, recall, f1 = prf(found, gold_total, predicted_total)
    types = {}
    for kind, (num_gold, num_predicted, correct) in sorted(per_type.items()):
        p, r, f = prf(correct, num_gold, num_predicted)
        types[kind] = {"precision": p, "recall": r, "f1": f, "support": num_gold}
    return {"precision": precision, "recall": recall, "f1": f1, "per_type": types}


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
