"""The strategy registry: every default comes from the signature it feeds."""

import dataclasses
import inspect

import pytest

from avalanche_hsf.lab.strategies import STRATEGIES


def signature_of(receiver):
    return inspect.signature(receiver).parameters


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_no_default_disagrees_with_the_signature_it_feeds(name):
    entry = STRATEGIES[name]
    for key, value in entry.defaults.items():
        if key in entry.training:  # an override of the scenario's [training], not a keyword
            continue
        receivers = [r for r in entry.receivers if key in signature_of(r)]
        assert receivers, f"{name}.{key} is a keyword of none of {entry.receivers}"
        parameter = signature_of(receivers[0])[key]
        if key in entry.variant:
            continue  # what the variant is: hsf_noreg's beta = 0
        if parameter.default is inspect.Parameter.empty:
            assert key in entry.values, f"{name}.{key}: the signature has no default and the entry gives none"
        else:
            assert key not in entry.values, f"{name}.{key}: declared twice, in the entry and the signature"
            assert value == parameter.default, f"{name}.{key}: {value!r} != {parameter.default!r}"


def test_variants_differ_from_the_defaults_they_replace():
    for name, entry in STRATEGIES.items():
        base = dataclasses.replace(entry, variant={}).defaults
        for key, value in entry.variant.items():
            assert value != base[key], f"{name}.{key} repeats the default {base[key]!r}"


def test_tuning_does_not_search_what_the_fixed_values_leave_unused():
    hsf = STRATEGIES["hsf"]
    assert "beta" not in hsf.search_space({})  # null_space by default: β weighs nothing
    assert "beta" in hsf.search_space({"null_space": False, "frozen_features": False})
    assert set(STRATEGIES["ewc"].search_space({})) == {"optimizer", "lr", "ewc_lambda"}
