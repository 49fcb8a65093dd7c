"""The Pulumi program: read the stack's config, build the platform for its cloud, export."""

import sys
from pathlib import Path

# The job package lives in jobs/ (it ships to the cluster as a zip of its own); the stack
# imports its pipeline spec model from there, and nothing else.
sys.path.insert(0, str(Path(__file__).resolve().parent / "jobs"))

import pulumi

from infra.config import load_config
from infra.wheelhouse import Platform as NodePlatform
from infra.wheelhouse import build_wheelhouse

config = load_config()
if config.cloud == "aws":
    from infra.aws.platform import Platform
else:
    from infra.gcp.platform import Platform

wheelhouse = build_wheelhouse(platform=NodePlatform(machine=config.node_machine))
platform = Platform(f"kappa-{pulumi.get_stack()}", config, wheelhouse=wheelhouse)
for output_name, value in platform.stack_outputs().items():
    pulumi.export(output_name, value)
