"""The Google APIs the stack uses, enabled by the stack itself.

Two APIs must already be on before the first `pulumi up`, because the provider needs them to
do anything else: serviceusage.googleapis.com (to enable the others) and
cloudresourcemanager.googleapis.com (to read the project's number). Both are on in every new
project unless an organisation turned them off.

The serving store's APIs are the store's to name (`services` of its store in
`infra/gcp/stores/`), so a stack enables those of the store it builds and no other's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.options import child_options

PREREQUISITE_APIS = ("serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com")

STACK_APIS = (
    "compute.googleapis.com",  # network, firewall, NAT, cluster VMs
    "dataproc.googleapis.com",
    "storage.googleapis.com",
    "pubsub.googleapis.com",
    "iam.googleapis.com",  # the cluster's service account
    "logging.googleapis.com",  # Dataproc job driver and agent logs
    "monitoring.googleapis.com",  # Dataproc agent metrics
)
CMEK_APIS = ("cloudkms.googleapis.com",)


def required_apis(*, cmek: bool, store_apis: Sequence[str] = ()) -> tuple[str, ...]:
    """The stack's own APIs, the serving store's, and Cloud KMS's with a customer-managed key.

    Each API is one resource named after it, so one named twice is kept once.
    """
    return tuple(dict.fromkeys((*STACK_APIS, *store_apis, *(CMEK_APIS if cmek else ()))))


@dataclass(frozen=True)
class ServicesArgs:
    project: pulumi.Input[str]
    apis: tuple[str, ...] = STACK_APIS


class Services(pulumi.ComponentResource):
    """Enables APIs; never disables them on destroy, since other workloads may use them."""

    def __init__(
        self, name: str, args: ServicesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kappa:gcp:Services", name, None, opts)
        child = child_options(self, opts)
        self.services = {
            api: gcp.projects.Service(
                f"{name}-{api.split('.')[0]}",
                project=args.project,
                service=api,
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=child,
            )
            for api in args.apis
        }
        self.apis = pulumi.Output.all(*[s.service for s in self.services.values()])
        self.register_outputs({"apis": self.apis})
