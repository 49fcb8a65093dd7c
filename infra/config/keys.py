"""The flat keys of the project: which exist, their declared defaults, and which a stack set.

Pulumi gives a stack the declared default of every project key the stack does not set, and
refuses to run a stack that lacks a key declared without a default (the CLI's mergeConfig).
So every key but `cloud` declares a default in Pulumi.yaml, and the program cannot tell a
default from a value set on purpose: a value equal to its key's declared default counts as
not set. Keys that are off unless set, or whose default depends on the cloud, declare the
neutral value in UNSET_VALUES.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Mapping
from typing import Any

from infra.config.clouds import Cloud
from infra.config.sections import SECTIONS, _Section

PROJECT = "kappa"

# The declared default (Pulumi.yaml) of each key whose model default is None: "not set".
UNSET_VALUES: dict[str, Any] = {
    "deletionProtection": "auto",
    "kmsKey": "",
    "permissionsBoundary": "",
    "brokerShards": 0,
    "clusterRelease": "",
    "clusterMasterType": "",
    "clusterCoreType": "",
    "clusterTaskTypes": [],
    "servingKind": "",
    "servingZone": "",
    "networkVpcId": "",
    "networkSubnetIds": [],
    "pipelineLiveVersion": "",
}
# Keys an earlier version had, and why they went: a stack that still sets one is told so.
REMOVED_KEYS: dict[str, str] = {
    key: (
        "EMR applies a spot timeout only while a cluster is first provisioned, never to the "
        "task fleet added to a running one, so it never acted; remove it from the stack (what "
        "happens when spot capacity runs out: docs/deploying.md)"
    )
    for key in ("clusterSpotTimeoutMinutes", "clusterSpotTimeoutAction")
}
# The one key without a default: a stack must say which cloud it is on.
REQUIRED_KEYS = ("cloud",)


@functools.cache
def all_keys() -> dict[str, tuple[type[_Section], str]]:
    """Every flat key, with its section model and field name (built once; do not modify)."""
    keys = {}
    for model in SECTIONS.values():
        for field_name, field in model.model_fields.items():
            keys[field.alias or field_name] = (model, field_name)
    return keys


def declared_default(key: str) -> Any:
    """The default Pulumi.yaml declares for `key`, as Pulumi would hand it over (JSON)."""
    if key in UNSET_VALUES:
        return UNSET_VALUES[key]
    model, field_name = all_keys()[key]
    default = model.model_fields[field_name].get_default(call_default_factory=True)
    return list(default) if isinstance(default, tuple) else default


def set_on_purpose(values: Mapping[str, Any]) -> dict[str, Any]:
    """The keys the stack set, decoded: those equal to their declared default are left out."""
    return {
        key: decoded
        for key, value in values.items()
        if not _is_declared_default(key, decoded := _decode(value))
    }


def unknown_keys(values: Mapping[str, Any]) -> list[str]:
    """A problem for each key the project does not have: removed ones say why, others get a
    suggestion."""
    known = list(all_keys())
    problems = []
    for key in sorted(set(values) - set(known)):
        if key in REMOVED_KEYS:
            problems.append(f"{PROJECT}:{key} was removed: {REMOVED_KEYS[key]}")
            continue
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {PROJECT}:{close[0]}?" if close else ""
        problems.append(f"{PROJECT}:{key} is not a key of this project{hint}")
    return problems


def keys_of_the_other_cloud(values: Mapping[str, Any], cloud: Cloud) -> list[str]:
    """A problem for each key set that means something on the other cloud only."""
    return [
        f"{PROJECT}:{key} applies to {owner} stacks only (cloud is {cloud})"
        for model in SECTIONS.values()
        for key, owner in model.only_on.items()
        if key in values and owner != cloud
    ]


def _is_declared_default(key: str, value: Any) -> bool:
    if key in REQUIRED_KEYS or key not in all_keys():
        return False
    given, default = _plain(value), _plain(declared_default(key))
    # By type as well: True == 1 in Python, but `true` is no integer's default.
    return type(given) is type(default) and given == default


def _plain(value: Any) -> Any:
    """Pulumi hands scalars over as text ("2", "false"): compare them as the JSON they are."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return list(value) if isinstance(value, tuple) else value


def _decode(value: Any) -> Any:
    # Pulumi hands arrays and objects to the program as JSON text.
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
