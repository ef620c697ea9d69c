"""A Policy's `httpTools` rules as the guard of an outbound call: which hops may go, and why not.

Each hop is checked twice. By name, before anything is resolved (a denied host is never even
looked up): deny rules first, then the first allow rule that covers the method, scheme, host and
port, else default deny. Then by address: a deny rule naming an address refuses any URL that
resolves to it, and a loopback, private, link-local, metadata or other non-public address passes
only when the allow rule names that very address as its host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llorch.dataplane.errors import DataplaneError
from llorch.resources import Policy
from llorch.resources.errors import ErrorCode
from llorch.resources.hosts import IPAddress, address_of, non_public_kind
from llorch.resources.policy import DEFAULT_PORTS, HostRule, HttpTools
from llorch.runtime.outbound.errors import InvalidUrl
from llorch.runtime.outbound.url import OutboundUrl


class ToolDenied(DataplaneError):
    """403 POLICY_DENIED; `policy_label` names the Policy and the rule, or its default deny."""

    def __init__(self, message: str, policy_label: str) -> None:
        super().__init__(ErrorCode.POLICY_DENIED, message, policy_label=policy_label)


def _host_matches(rule: str, host: str) -> bool:
    if rule == "*":
        return True
    if rule.startswith("*."):
        return address_of(host) is None and host.endswith(rule[1:])
    return rule == host


def _covers(rule: HostRule, method: str, url: OutboundUrl, *, allow: bool) -> bool:
    ports = rule.ports if rule.ports is not None else ([DEFAULT_PORTS[url.scheme]] if allow else None)
    return (
        _host_matches(rule.host, url.host)
        and (ports is None or url.port in ports)
        and (rule.schemes is None or url.scheme in rule.schemes)
        and (rule.methods is None or method in rule.methods)
    )


@dataclass(frozen=True)
class ToolGuard:
    """The guard one call runs under; `allowed_by` is the label of the rule that let the last
    hop through (for the audit trail)."""

    policy: str
    """`Policy/<name>`, or a sentence saying why there is none."""
    rules: HttpTools | None

    @classmethod
    def of(cls, policy: Policy | None, missing: str) -> ToolGuard:
        if policy is None:
            return cls(missing, None)
        return cls(f"Policy/{policy.metadata.name}", policy.spec.http_tools)

    def label(self, rule: HostRule | None, kind: str = "allow", index: int = 0) -> str:
        if rule is None:
            return f"{self.policy}: default deny"
        return f"{self.policy}: {kind} {rule.name or f'[{index}]'}"

    def _refuse(
        self, message: str, rule: HostRule | None = None, kind: str = "allow", index: int = 0
    ) -> ToolDenied:
        return ToolDenied(message, self.label(rule, kind, index))

    def allow_rule(self, method: str, url: OutboundUrl) -> tuple[int, HostRule] | None:
        if self.rules is None:
            return None
        return next(
            ((i, r) for i, r in enumerate(self.rules.allow) if _covers(r, method, url, allow=True)), None
        )

    def before_resolving(self, method: str, url: OutboundUrl) -> None:
        what = f"{method} {url.without_query()}"
        if self.rules is None:
            raise self._refuse(
                f"{what}: no Policy with httpTools applies ({self.policy}), so nothing is allowed"
            )
        for index, rule in enumerate(self.rules.deny):
            if _covers(rule, method, url, allow=False):
                raise self._refuse(
                    f"{what} is denied by deny rule {rule.name or index} ({rule.host})", rule, "deny", index
                )
        if self.allow_rule(method, url) is None:
            raise self._refuse(f"{what}: no allow rule covers this method, scheme, host and port")

    def allowed_label(self, method: str, url: OutboundUrl) -> str:
        found = self.allow_rule(method, url)
        return self.label(found[1], "allow", found[0]) if found else self.label(None)

    def before_connecting(self, method: str, url: OutboundUrl, addresses: Sequence[IPAddress]) -> None:
        assert self.rules is not None, "before_resolving refused the hop"
        what = f"{method} {url.without_query()}"
        for index, rule in enumerate(self.rules.deny):
            named = address_of(rule.host)
            if named is not None and named in addresses:
                raise self._refuse(
                    f"{what}: {url.host} resolves to {named}, denied by deny rule {rule.name or index}",
                    rule,
                    "deny",
                    index,
                )
        found = self.allow_rule(method, url)
        assert found is not None, "before_resolving refused the hop"
        _, rule = found
        for address in addresses:
            kind = non_public_kind(address)
            if kind is not None and address_of(rule.host) != address:
                via = "" if url.is_address else f"{url.host} resolves to "
                raise self._refuse(
                    f"{what}: {via}{address}, a {kind} address; only an allow rule whose host is "
                    f"{address} itself reaches it"
                )
        if url.userinfo:
            # Last, so that `http://allowed@denied/` is refused for what it would reach.
            raise InvalidUrl("credentials in the URL (user:password@) are never sent; use a header")
