"""Fine-tuning recipes: the warmup, schedule, weight decay and clipping a run gets for what it leaves unset.

``bert`` is google-research/bert's (10% warmup, linear decay to zero, weight decay 0.01, gradients
clipped to norm 1, epsilon 1e-6, the head at the encoder's rate). ``fast`` is the default: the
plain Keras recipe's optimizer choices (constant rate, no warmup, clipping or weight decay, Keras'
epsilon) with the randomly initialised task head at 10x the encoder's rate, which
benchmarks/quality.py measured on three task families in one-epoch (63-step) runs
(docs/finetuning_results.md). A value given explicitly always wins over the recipe's.
"""
from bert_tf.errors import UserError

RECIPES = {
    "bert": {"warmup_proportion": 0.1, "lr_schedule": "linear", "weight_decay": 0.01, "clip_norm": 1.0,
             "adam_epsilon": 1e-6, "head_lr_multiplier": 1.0},
    "fast": {"warmup_proportion": 0.0, "lr_schedule": "constant", "weight_decay": 0.0, "clip_norm": 0.0,
             "adam_epsilon": 1e-7, "head_lr_multiplier": 10.0},
}
DEFAULT_RECIPE = "fast"
# Schedule settings that only a decaying schedule reads.
DECAY_KNOBS = ("lr_end", "lr_power", "num_cycles")
RECIPE_HELP = {
    "bert": "google-research/bert's: 10% warmup, linear decay to zero, weight decay 0.01, clipping at norm 1",
    "fast": "the peak rate from the first step to the last, no weight decay, no clipping, Adam epsilon 1e-7, "
            "the task head at 10x the rate",
}


def settings(recipe):
    """The settings of ``recipe`` (a copy)."""
    if recipe not in RECIPES:
        raise UserError(f"unknown recipe {recipe!r}: choose one of {', '.join(RECIPES)}")
    return dict(RECIPES[recipe])


def apply(flags):
    """At a job's start: makes flags.recipe's values the defaults of the flags it sets (see
    ``set_defaults``), after refusing a knob of a decaying schedule under a constant-rate recipe."""
    recipe = getattr(flags, "recipe", None) or DEFAULT_RECIPE
    if settings(recipe)["lr_schedule"] == "constant" and not _given(flags, "lr_schedule"):
        # A knob of a decaying schedule says the user expects one (google-research/bert's default).
        knob = next((name for name in DECAY_KNOBS if getattr(flags, name, None) is not None), None)
        if knob:
            raise UserError(f"--{knob} shapes a decaying schedule, but --recipe={recipe} keeps the learning rate "
                            "constant: add --lr_schedule=linear (or another decaying schedule), or --recipe=bert")
    set_defaults(flags, recipe)


def set_defaults(flags, recipe):
    """Makes ``recipe``'s values the defaults of the flags it sets; values given on the command line or
    assigned in code keep theirs. ``flags`` is an absl FlagValues (``set_default`` leaves explicitly set
    flags alone; the scripts' flag definitions call this before parsing, so --help shows the default
    recipe's values) or a plain namespace (only missing or None attributes are filled)."""
    for name, value in settings(recipe).items():
        if hasattr(flags, "set_default"):
            if name in flags:
                flags.set_default(name, value)
        elif getattr(flags, name, None) is None:
            setattr(flags, name, value)


def _given(flags, name):
    """Whether ``name`` was set on the command line or in code (not left at its default)."""
    if hasattr(flags, "set_default"):
        return name in flags and not flags[name].using_default_value
    return getattr(flags, name, None) is not None


def in_effect(flags):
    """{setting: value} the run uses for each setting of its recipe, explicit flags included."""
    return {name: getattr(flags, name, None) for name in settings(flags.recipe)}
