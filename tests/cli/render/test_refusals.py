"""The lines under a refusal: the Policy and rule from `policy_label`, and what to change."""

from __future__ import annotations

from llorch.cli.render.refusals import advice, parse_label


def test_a_policy_rule_says_what_to_raise_and_where() -> None:
    assert advice("ADMISSION_REJECT", "Policy/small: admission.queueCapacity") == [
        "policy:  Policy/small",
        "rule:    admission.queueCapacity",
        "change:  raise spec.admission.queueCapacity, give the pool more replicas or slots, or set "
        "spec.admission.overflow: drop-lru to drop the longest-waiting task instead",
        "where:   Policy/small's file in the manifests folder, or llorchctl apply -f a changed copy",
    ]


def test_several_rules_each_get_their_change() -> None:
    lines = advice("BUDGET_EXCEEDED", "Policy/p: sessions.maxTurns, budgets.tokens, budgets.cost")
    assert lines[1] == "rule:    sessions.maxTurns, budgets.tokens, budgets.cost"
    assert [line.split(",")[0] for line in lines[2:5]] == [
        "change:  raise spec.sessions.maxTurns",
        "change:  raise spec.budgets.tokens (prompt and output tokens per session)",
        "change:  raise spec.budgets.cost (or lower the pool's spec.costPer1kTokens)",
    ]


def test_without_a_policy_the_defaults_refused_and_a_new_policy_is_the_way() -> None:
    lines = advice("BUDGET_EXCEEDED", "no Policy selects Pool/demo: sessions.maxTurns")
    assert lines[0] == "policy:  none selects Pool/demo: the defaults apply"
    assert lines[-1] == (
        "where:   a new Policy whose spec.selector.matchLabels select Pool/demo (llorchctl apply -f)"
    )
    assert parse_label("no Policy selects Pool/demo: x").pool == "Pool/demo"


def test_http_tool_rules() -> None:
    assert advice("POLICY_DENIED", "Policy/tools: deny no-admin")[2] == (
        "change:  remove or narrow spec.httpTools.deny rule no-admin"
    )
    assert advice("POLICY_DENIED", "Policy/tools: default deny")[2] == (
        "change:  add a spec.httpTools.allow rule covering this method, scheme, host and port"
    )


def test_refusals_without_a_policy_label() -> None:
    assert advice("MODEL_RETIRED", None)[0] == "rule:    the Model's spec.lifecycle is Retired"
    assert advice("INSUFFICIENT_SCOPE", None)[1].startswith("change:  use a key that holds the scope")
    assert advice("POOL_UNREADY", None) == []


def test_a_rule_this_llorchctl_does_not_know_is_still_named() -> None:
    assert advice("BUDGET_EXCEEDED", "Policy/p: budgets.gpuSeconds") == [
        "policy:  Policy/p",
        "rule:    budgets.gpuSeconds",
    ]
