"""The cloud provider's own keys the stack needs: `<cloud>:region`, and `gcp:project`.

They are read from the provider's namespace, so they can be judged only once the cloud is
known; a region that fails here fails the rules that read `region` too.
"""

from __future__ import annotations

import re

from infra.config.clouds import Cloud


def region_problems(cloud: Cloud, region: str | None) -> list[str]:
    if not region:
        return [f"{cloud}:region is required: set it with `pulumi config set {cloud}:region`"]
    if not re.match(r"^[a-z]+(-[a-z]+)+-?\d+$", region):
        return [f"{cloud}:region: got {region!r}; expected a region name like us-east-1"]
    return []


def project_problems(cloud: Cloud, project: str | None) -> list[str]:
    if cloud == "gcp" and not project:
        return ["gcp:project is required: set it with `pulumi config set gcp:project`"]
    return []
