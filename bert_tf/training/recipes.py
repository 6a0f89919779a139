"""Fine-tuning recipes: the warmup, schedule, weight decay and clipping a run gets for what it leaves unset.

``bert`` is google-research/bert's (10% warmup, linear decay to zero, weight decay 0.01, gradients
clipped to norm 1). ``fast`` is the default: benchmarks/quality.py measured, on three task families
at one to three epochs, which of bert's choices cost quality on short runs (see
docs/finetuning_results.md), and ``fast`` drops those. A value given explicitly always wins over
the recipe's.
"""
from bert_tf.errors import UserError

RECIPES = {
    "bert": {"warmup_proportion": 0.1, "lr_schedule": "linear", "weight_decay": 0.01, "clip_norm": 1.0},
    "fast": {"warmup_proportion": 0.1, "lr_schedule": "constant", "weight_decay": 0.01, "clip_norm": 1.0},
}
DEFAULT_RECIPE = "fast"
RECIPE_HELP = {
    "bert": "google-research/bert's: 10% warmup, linear decay to zero, weight decay 0.01, clipping at norm 1",
    "fast": "10% warmup, then the peak rate to the end; weight decay 0.01, clipping at norm 1",
}


def settings(recipe):
    """The settings of ``recipe`` (a copy)."""
    if recipe not in RECIPES:
        raise UserError(f"unknown recipe {recipe!r}: choose one of {', '.join(RECIPES)}")
    return dict(RECIPES[recipe])


def apply(flags, recipe=None):
    """Makes ``recipe`` (default: flags.recipe) the default of the flags it sets; values given on the
    command line or assigned in code keep theirs.

    ``flags`` is an absl FlagValues (defaults replaced with ``set_default``, which leaves explicitly
    set flags alone) or a plain namespace (only missing or None attributes are filled). Called when the
    flags are defined (before parsing) as well as when a job starts."""
    recipe = recipe or getattr(flags, "recipe", None) or DEFAULT_RECIPE
    chosen = settings(recipe)
    for name, value in chosen.items():
        if hasattr(flags, "set_default"):
            if name in flags:
                flags.set_default(name, value)
        elif getattr(flags, name, None) is None:
            setattr(flags, name, value)


def in_effect(flags):
    """{setting: value} the run uses for each setting of its recipe, explicit flags included."""
    return {name: getattr(flags, name, None) for name in settings(flags.recipe)}
