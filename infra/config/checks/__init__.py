"""Rules that depend on the cloud, the region or several keys at once: one module per section.

They run in one pass with the field checks, over a view of the stack in which every refused
value stands at its default; `run` skips a rule that reads a refused key (see `rule`).
"""

from __future__ import annotations

from collections.abc import Set
from typing import TYPE_CHECKING

from infra.config.checks import broker, cluster, general, network, pipeline, retention, serving
from infra.config.checks.rule import Rule

if TYPE_CHECKING:
    from infra.config.stack import StackConfig

RULES: tuple[Rule, ...] = (
    *broker.RULES,
    *cluster.RULES,
    *serving.RULES,
    *network.RULES,
    *general.RULES,
    *retention.RULES,
    *pipeline.RULES,
)


def run(config: StackConfig, refused: Set[str]) -> list[str]:
    """Every problem the rules find, leaving out the rules that read a key in `refused`."""
    return [found for rule in RULES if not rule.reads & refused for found in rule(config)]
