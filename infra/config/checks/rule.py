"""A rule: a check over several keys, or over one key and the cloud or the region.

A rule declares the keys it reads (flat keys without `kappa:`, and `region` for the
provider's region). The rules run over a view of the stack in which a key whose own value was
refused stands at its default; a rule that reads such a key is skipped, since it would judge a
value the stack never asked for and report a second, misleading problem for the same key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infra.config.stack import StackConfig

Check = Callable[["StackConfig"], Iterable[str]]


@dataclass(frozen=True)
class Rule:
    reads: frozenset[str]
    check: Check

    @property
    def name(self) -> str:
        return self.check.__name__

    def __call__(self, config: StackConfig) -> list[str]:
        return list(self.check(config))


def reads(*keys: str) -> Callable[[Check], Rule]:
    """Declare a rule and the keys it reads: `@reads("cloud", "brokerRetentionHours")`."""

    def declare(check: Check) -> Rule:
        return Rule(frozenset(keys), check)

    return declare
