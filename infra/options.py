"""Resource options shared by every component on both clouds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi


def child_options(
    parent: pulumi.Resource,
    opts: pulumi.ResourceOptions | None,
    *depends_on: pulumi.Resource,
    **options: Any,
) -> pulumi.ResourceOptions:
    """Options for a component's children: parented to it, and waiting for what it waits for
    (plus `depends_on`), with any further option (protect, ignore_changes...).

    Pulumi does not pass a component's depends_on on to its children, so a layer told to
    wait for something (the APIs being enabled, another layer's grants) would otherwise
    create its resources right away.
    """
    inherited: list[pulumi.Resource] = []
    given = opts.depends_on if opts is not None else None
    if isinstance(given, pulumi.Resource):
        inherited = [given]
    elif isinstance(given, Sequence):
        inherited = [r for r in given if isinstance(r, pulumi.Resource)]
    return pulumi.ResourceOptions(parent=parent, depends_on=[*inherited, *depends_on], **options)
