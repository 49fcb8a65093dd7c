"""APIs: the stack enables what it uses, before using it, and never disables them."""

from __future__ import annotations

import pytest

import infra.gcp.stores
from infra.gcp.services import PREREQUISITE_APIS
from infra.gcp.stores.bigtable import BigtableStore
from tests.infra.gcp.conftest import CMEK_KEY, GcpStack
from tests.infra.mocks import Recording

SERVICE = "gcp:projects/service:Service"

BIGTABLE_APIS = {"bigtableadmin.googleapis.com", "bigtable.googleapis.com"}
STACK_APIS = {
    "compute.googleapis.com",
    "dataproc.googleapis.com",
    "storage.googleapis.com",
    "pubsub.googleapis.com",
    "bigtableadmin.googleapis.com",
    "bigtable.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
}


def apis(recording: Recording) -> set[str]:
    return {s["service"] for s in recording.of_type(SERVICE)}


def test_stack_enables_the_apis_its_resources_and_job_use(default_stack: Recording):
    assert apis(default_stack) == STACK_APIS
    assert {s["project"] for s in default_stack.of_type(SERVICE)} == {"acme-data"}


def test_apis_stay_enabled_when_the_stack_is_destroyed(default_stack: Recording):
    for service in default_stack.of_type(SERVICE):
        assert service["disableOnDestroy"] is False
        assert service["disableDependentServices"] is False


def test_cmek_also_enables_cloud_kms(gcp_stack: GcpStack):
    assert apis(gcp_stack(kmsKey=CMEK_KEY)) == STACK_APIS | {"cloudkms.googleapis.com"}


class CloudSqlStandIn(BigtableStore):
    """A store of another kind: Bigtable's resources, but the APIs of its own."""

    services = ("sqladmin.googleapis.com",)


def test_the_serving_stores_apis_are_the_ones_its_store_names(
    gcp_stack: GcpStack, monkeypatch: pytest.MonkeyPatch
):
    assert set(infra.gcp.stores.STORES["bigtable"].services) == BIGTABLE_APIS
    monkeypatch.setitem(infra.gcp.stores.STORES, "cloudsql", CloudSqlStandIn())
    enabled = apis(gcp_stack(servingKind="cloudsql"))
    assert enabled == (STACK_APIS - BIGTABLE_APIS) | {"sqladmin.googleapis.com"}


def test_apis_the_provider_needs_first_are_named_not_managed(default_stack: Recording):
    assert set(PREREQUISITE_APIS) == {
        "serviceusage.googleapis.com",
        "cloudresourcemanager.googleapis.com",
    }
    assert not apis(default_stack) & set(PREREQUISITE_APIS)


def test_every_resource_waits_for_the_apis(default_stack: Recording):
    services = default_stack.of_type(SERVICE)
    waiting = [r for r in default_stack if r.type.startswith("gcp:") and r.type != SERVICE]
    assert waiting
    for resource in waiting:
        missing = [s.name for s in services if not default_stack.depends_on(resource, s)]
        assert not missing, f"{resource.type} {resource.name} does not wait for {missing}"
