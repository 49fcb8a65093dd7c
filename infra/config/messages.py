"""How a problem is told: one line per offending key, naming the key, the value given and what
is allowed, so that a stack's owner can fix every problem from one run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic_core import ErrorDetails

from infra.config.keys import PROJECT


class ConfigError(ValueError):
    """The stack configuration is invalid; `problems` holds one line per offending key."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "invalid stack configuration (nothing was created):\n  - " + "\n  - ".join(problems)
        )


def problem(key: str, value: Any, expected: str) -> str:
    """The usual line: `kappa:<key>: got <value>; <what is allowed>`."""
    return f"{PROJECT}:{key}: got {value!r}; {expected}"


def path(parts: Sequence[Any]) -> str:
    """Where in a value a problem is, as in `tags.owner` or `[0].roleArn`."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts)


def describe(item: ErrorDetails, given: Mapping[str, Any]) -> str:
    """A field error of a section model, told by the key it came from."""
    location = list(item["loc"])
    key = str(location.pop(0)) if location else "(section)"
    suffix = path(location)
    if item["type"] == "missing":
        return f"{PROJECT}:{key} is required: {item['msg']}"
    value = given.get(key, item.get("input"))
    return f"{PROJECT}:{key}{suffix}: got {value!r}; {item['msg']}"
