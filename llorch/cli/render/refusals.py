"""What a refusal means for the person who hit it: the Policy behind it, the rule, and what to change.

llorchd names the Policy and its rules in the error's `policy_label` (`Policy/default:
sessions.maxTurns`, `Policy/tools: deny no-admin`, `no Policy selects Pool/demo:
admission.queueCapacity` when the defaults refused); every command that shows an error (an answer
or a task's `error` frame) turns it into the same few lines under its `error:` line.
"""

from __future__ import annotations

from dataclasses import dataclass

_NO_POLICY = "no Policy selects "

_RULES = {
    "sessions.maxTurns": "raise spec.sessions.maxTurns, or start a new session (a new session_id)",
    "budgets.tokens": "raise spec.budgets.tokens (prompt and output tokens per session), "
    "or start a new session",
    "budgets.wallTimeSeconds": "raise spec.budgets.wallTimeSeconds, or start a new session",
    "budgets.cost": "raise spec.budgets.cost (or lower the pool's spec.costPer1kTokens), "
    "or start a new session",
    "admission.queueCapacity": "raise spec.admission.queueCapacity, give the pool more replicas or "
    "slots, or set spec.admission.overflow: drop-lru to drop the longest-waiting task instead",
}

_WITHOUT_POLICY = {
    "MODEL_RETIRED": (
        "the Model's spec.lifecycle is Retired",
        "set spec.lifecycle: Active on the Model, or point the pool's spec.model at an Active one",
    ),
    "INSUFFICIENT_SCOPE": (
        "the key's scopes (auth.keys in llorchd's config)",
        "use a key that holds the scope: `llorchctl token create --name NAME --scopes ...`, "
        "then add it to auth.keys",
    ),
}


@dataclass(frozen=True)
class Label:
    policy: str | None
    """`Policy/<name>`, or None when no Policy applies and its defaults refused."""
    pool: str | None
    """`Pool/<name>` when no Policy selects it."""
    rules: list[str]


def parse_label(label: str) -> Label:
    owner, _, rest = label.partition(": ")
    rules = [r.strip() for r in rest.split(",") if r.strip()] if rest else []
    if owner.startswith(_NO_POLICY):
        return Label(None, owner.removeprefix(_NO_POLICY), rules)
    return Label(owner, None, rules)


def _tool_change(rule: str) -> str | None:
    """The HTTP-tool guard's rules: `default deny`, `deny <name>`, `allow <name>`."""
    if rule == "default deny":
        return "add a spec.httpTools.allow rule covering this method, scheme, host and port"
    kind, _, name = rule.partition(" ")
    if kind == "deny":
        return f"remove or narrow spec.httpTools.deny rule {name}"
    if kind == "allow":
        return f"to reach a non-public address, name the address itself as allow rule {name}'s host"
    return None


def _change(rule: str) -> str | None:
    return _RULES.get(rule) or _tool_change(rule)


def advice(code: str, policy_label: str | None) -> list[str]:
    """Lines to show under the error: policy, rule(s), what to change; [] when there is nothing
    to add to the message."""
    if policy_label is None:
        known = _WITHOUT_POLICY.get(code)
        return [f"rule:    {known[0]}", f"change:  {known[1]}"] if known is not None else []
    label = parse_label(policy_label)
    changes = [change for change in map(_change, label.rules) if change is not None]
    if label.policy is not None:
        lines = [f"policy:  {label.policy}"]
        how = f"where:   {label.policy}'s file in the manifests folder, or llorchctl apply -f a changed copy"
    else:
        lines = [f"policy:  none selects {label.pool}: the defaults apply"]
        how = (
            f"where:   a new Policy whose spec.selector.matchLabels select {label.pool} (llorchctl apply -f)"
        )
    if label.rules:
        lines.append(f"rule:    {', '.join(label.rules)}")
    lines += [f"change:  {change}" for change in changes]
    if changes:
        lines.append(how)
    return lines
