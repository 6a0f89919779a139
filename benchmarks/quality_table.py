"""The quality ablation's table (benchmarks/quality.py): per task and cell the seeds' mean and
spread, the differences to ``plain`` and to the paper recipe (``bert_recipe``), the text table and its plot.
"""
import numpy as np

from bert_tf import fileio
from benchmarks.quality_recipes import BERT_RECIPE, PLAIN, TASKS


def summarise(runs, cells):
    """Per task and cell: mean, standard deviation (ddof 0 over seeds), deltas to plain and to bert_recipe,
    mean wall seconds and FLOP share, from runs = [{task, cell, seed, metric, wall_seconds, flop_share}]."""
    table = {}
    for task in dict.fromkeys(r["task"] for r in runs):
        rows = {}
        for cell in cells:
            mine = [r for r in runs if r["task"] == task and r["cell"] == cell]
            if not mine:
                continue
            values = np.array([r["metric"] for r in mine])
            rows[cell] = {"mean": float(values.mean()), "std": float(values.std()),
                          "seeds": [r["seed"] for r in mine], "values": values.tolist(),
                          "wall_seconds": float(np.mean([r["wall_seconds"] for r in mine])),
                          "flop_share": float(np.mean([r["flop_share"] for r in mine]))}
        for row in rows.values():
            for key, base in (("vs_plain", PLAIN), ("vs_bert", BERT_RECIPE)):
                row[key] = row["mean"] - rows[base]["mean"] if base in rows else None
        table[task] = rows
    return table


def format_table(table):
    lines = []
    for task, rows in table.items():
        lines.append(f"{task} ({TASKS[task]['metric']}):")
        lines.append(f"  {'cell':<16}{'mean':>8}{'std':>8}{'vs plain':>10}{'vs bert':>12}{'wall s':>8}"
                     f"{'FLOP %':>8}  seeds")
        for cell, row in rows.items():
            deltas = "".join(f"{row[key]:>+{width}.4f}" if row[key] is not None else f"{'-':>{width}}"
                             for key, width in (("vs_plain", 10), ("vs_bert", 12)))
            lines.append(f"  {cell:<16}{row['mean']:>8.4f}{row['std']:>8.4f}{deltas}{row['wall_seconds']:>8.1f}"
                         f"{100 * row['flop_share']:>8.1f}  {','.join(str(s) for s in row['seeds'])}")
    return "\n".join(lines)


def plot(table, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(table), figsize=(4.5 * len(table), 4), squeeze=False)
    for axis, (task, rows) in zip(axes[0], table.items()):
        names = list(rows)
        base = rows[PLAIN]["mean"] if PLAIN in rows else 0.0
        axis.barh(names, [rows[n]["mean"] - base for n in names], xerr=[rows[n]["std"] for n in names],
                  color=["tab:gray" if n == PLAIN else "tab:blue" for n in names])
        axis.axvline(0, color="black", linewidth=0.8)
        axis.invert_yaxis()
        axis.set_title(f"{task}: {TASKS[task]['metric']}")
        axis.set_xlabel("difference to plain (mean, bar = std over seeds)" if PLAIN in rows else "mean")
    figure.tight_layout()
    fileio.write_png(path, figure)
    plt.close(figure)

