"""Evaluation metrics on numpy arrays, with the names the result files use."""
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
