"""--recipe: its values become the defaults of the flags it sets, and explicit values win."""
import types

import pytest
from absl import flags

from bert_tf import flags as flag_groups
from bert_tf.errors import UserError
from bert_tf.training import recipes


def _finetune_flags(argv=()):
    fv = flags.FlagValues()
    flag_groups.define_model_flags(fv)
    flag_groups.define_training_flags(fv)
    flag_groups.define_finetune_flags(fv)
    fv(["prog", *argv])
    return fv


def test_defaults_shown_are_the_default_recipe():
    fv = _finetune_flags()
    assert fv.recipe == recipes.DEFAULT_RECIPE
    for name, value in recipes.RECIPES[recipes.DEFAULT_RECIPE].items():
        assert fv[name].default == value and getattr(fv, name) == value


def test_bert_recipe_replaces_defaults_and_keeps_explicit_values():
    fv = _finetune_flags(["--recipe=bert", "--clip_norm=0.5"])
    recipes.apply(fv)
    assert recipes.in_effect(fv) == {"warmup_proportion": 0.1, "lr_schedule": "linear", "weight_decay": 0.01,
                                     "clip_norm": 0.5, "adam_epsilon": 1e-6, "head_lr_multiplier": 1.0}
    assert fv.lr_schedule == "linear" and fv.clip_norm == 0.5


def test_values_assigned_in_code_are_kept():
    fv = _finetune_flags(["--recipe=bert"])
    fv.lr_schedule = "cosine"
    recipes.apply(fv)
    assert fv.lr_schedule == "cosine" and fv.weight_decay == recipes.RECIPES["bert"]["weight_decay"]


def test_plain_namespace_gets_only_missing_values():
    namespace = types.SimpleNamespace(recipe="bert", clip_norm=0.0, lr_schedule=None)
    recipes.apply(namespace)
    assert namespace.clip_norm == 0.0 and namespace.lr_schedule == "linear" and namespace.warmup_proportion == 0.1


def test_unknown_recipe_is_refused():
    with pytest.raises(UserError, match="unknown recipe 'slow'"):
        recipes.settings("slow")


def test_a_decay_knob_without_a_schedule_under_the_constant_recipe_is_refused():
    fv = _finetune_flags(["--lr_end=1e-6"])
    with pytest.raises(UserError, match="--lr_end shapes a decaying schedule, but --recipe=fast keeps"):
        recipes.apply(fv)
    fv = _finetune_flags(["--lr_end=1e-6", "--lr_schedule=linear"])
    recipes.apply(fv)
    assert recipes.in_effect(fv)["lr_schedule"] == "linear"
    fv = _finetune_flags(["--lr_end=1e-6", "--recipe=bert"])
    recipes.apply(fv)
    assert fv.lr_schedule == "linear" and fv.lr_end == 1e-6
