"""Run Pulumi programs under mocks and record every resource they declare.

Resources are recorded with the inputs the engine would send to the provider (camelCase
names, numbers as floats), which is what the tests assert on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

ACCOUNT_ID = "123456789012"
GCP_PROJECT_NUMBER = "987654321098"


@dataclass
class Resource:
    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    parent: str | None
    # What the engine learns besides inputs: Pulumi's `protect` option, the URNs this
    # resource waits for, and how it is replaced.
    protected: bool = False
    dependencies: tuple[str, ...] = ()
    delete_before_replace: bool = False
    replace_on_changes: tuple[str, ...] = ()
    ignore_changes: tuple[str, ...] = ()
    # Inputs the program marked secret: Pulumi encrypts them in its state and masks them.
    secret_inputs: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> Any:
        return self.inputs[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.inputs.get(key, default)

    def json(self, key: str) -> Any:
        """An input that holds a JSON document (IAM policies, configurations)."""
        value = self.inputs[key]
        return json.loads(value) if isinstance(value, str) else value


@dataclass
class Recording:
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    def of_type(self, type_token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> Resource:
        found = self.of_type(type_token)
        assert len(found) == 1, f"expected one {type_token}, found {[r.name for r in found]}"
        return found[0]

    def named(self, name: str, type_token: str | None = None) -> Resource:
        found = [r for r in self.resources if r.name == name and type_token in (None, r.type)]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]

    def children_of(self, parent_urn_suffix: str) -> list[Resource]:
        return [r for r in self.resources if r.parent and r.parent.endswith(parent_urn_suffix)]

    def depends_on(self, resource: Resource, dependency: Resource) -> bool:
        """Whether the engine would create `dependency` before `resource`."""
        wanted = f"{dependency.type}::{dependency.name}"
        return any(urn.endswith(wanted) for urn in resource.dependencies)

    def by_id(self, resource_id: str) -> Resource:
        found = [r for r in self.resources if r.outputs.get("id") == resource_id]
        assert len(found) == 1, f"expected one resource with id {resource_id}"
        return found[0]


def aws_region() -> str:
    """The provider's region as the stack configures it, as AWS answers in it: ARNs, zones
    and the region data source follow it, so a component that ignores it shows. Without one
    (a component run alone), us-east-1."""
    return pulumi.Config("aws").get("region") or "us-east-1"


def _computed_outputs(type_token: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes providers compute and components read back (ARNs, names, ids)."""
    package, _, kind = type_token.partition(":")
    region = aws_region()
    service = kind.split("/")[0]
    outputs: dict[str, Any] = {}
    if package == "aws":
        physical = inputs.get("name") or inputs.get("bucket") or f"{name}-physical"
        outputs["name"] = physical
        arn_service = {"kinesis": "kinesis", "dynamodb": "dynamodb", "kms": "kms"}.get(service)
        if service == "s3" and type_token.endswith(":Bucket"):
            outputs["bucket"] = physical
            outputs["arn"] = f"arn:aws:s3:::{physical}"
        elif service == "iam":
            kind_name = type_token.rsplit(":", 1)[-1].lower()
            outputs["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:{kind_name}/{physical}"
        elif service == "kinesis":
            outputs["arn"] = f"arn:aws:kinesis:{region}:{ACCOUNT_ID}:stream/{physical}"
        elif service == "dynamodb":
            outputs["arn"] = f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{physical}"
        elif arn_service:
            outputs["arn"] = f"arn:aws:{arn_service}:{region}:{ACCOUNT_ID}:key/{name}-key-id"
            outputs["keyId"] = f"{name}-key-id"
        else:
            outputs["arn"] = f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{name}"
        if service == "emr" and type_token.endswith(":Cluster"):
            outputs["masterPublicDns"] = f"ip-10-64-0-10.{name}.internal"
    elif package == "tls":
        outputs["privateKeyPem"] = f"-----BEGIN MOCK KEY-----{name}-----END MOCK KEY-----"
        outputs["certPem"] = f"-----BEGIN CERTIFICATE-----{name}-----END CERTIFICATE-----"
    elif package == "gcp":
        physical = inputs.get("name") or f"{name}-physical"
        outputs["name"] = physical
        outputs["selfLink"] = f"https://gcp.mock/{service}/{physical}"
        if type_token.endswith(":Account"):
            account_id = inputs.get("accountId", name)
            outputs["email"] = f"{account_id}@mock-project.iam.gserviceaccount.com"
            outputs["member"] = f"serviceAccount:{outputs['email']}"
        if type_token.endswith(":Bucket"):
            outputs["url"] = f"gs://{physical}"
    return outputs


# How the engine's wire format marks a secret value (pulumi.runtime.rpc).
_SECRET_SIGNATURE = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")


def _secret_inputs(request: Any) -> tuple[str, ...]:
    key, value = _SECRET_SIGNATURE
    fields = request.object.fields
    return tuple(
        sorted(
            name
            for name, field in fields.items()
            if field.HasField("struct_value")
            and field.struct_value.fields.get(key) is not None
            and field.struct_value.fields[key].string_value == value
        )
    )


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, invokes: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.recording = Recording()
        self.registrations: dict[str, Any] = {}
        self.invokes = dict(invokes or {})

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        resource_id = f"{args.name}-id"
        computed = _computed_outputs(args.typ, args.name, args.inputs)
        outputs = {**computed, **args.inputs, "id": resource_id}
        request = self.registrations.get(f"{args.typ}::{args.name}")
        self.recording.resources.append(
            Resource(
                args.typ,
                args.name,
                dict(args.inputs),
                outputs,
                parent=(request.parent or None) if request else None,
                protected=bool(request and request.protect),
                dependencies=tuple(request.dependencies) if request else (),
                delete_before_replace=bool(request and request.deleteBeforeReplace),
                replace_on_changes=tuple(request.replaceOnChanges) if request else (),
                ignore_changes=tuple(request.ignoreChanges) if request else (),
                secret_inputs=_secret_inputs(request) if request else (),
            )
        )
        return resource_id, outputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token in self.invokes:
            return dict(self.invokes[args.token]), []
        return self._invoke(args.token, args.args), []

    def _invoke(self, token: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/ci"}
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com"}
        if token == "aws:index/getRegion:getRegion":
            return {"name": aws_region(), "region": aws_region()}
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            region = aws_region()
            return {"names": [f"{region}{zone}" for zone in "abc"], "zoneIds": []}
        if token == "aws:kms/getKey:getKey":
            # A key as `kmsKey` usually names one: enabled, symmetric, customer managed.
            key_arn = str(arguments.get("keyId", ""))
            return {
                "arn": key_arn,
                "awsAccountId": key_arn.split(":")[4] if key_arn.count(":") >= 5 else ACCOUNT_ID,
                "keyState": "Enabled",
                "enabled": True,
                "keyUsage": "ENCRYPT_DECRYPT",
                "keySpec": "SYMMETRIC_DEFAULT",
                "customerMasterKeySpec": "SYMMETRIC_DEFAULT",
                "keyManager": "CUSTOMER",
            }
        if token == "gcp:organizations/getProject:getProject":
            return {"number": GCP_PROJECT_NUMBER, "projectId": "mock-project"}
        if token == "gcp:storage/getProjectServiceAccount:getProjectServiceAccount":
            return {"emailAddress": f"service-{GCP_PROJECT_NUMBER}@gs-project-accounts.mock"}
        return {}


class _ParentRecordingMonitor(MockMonitor):
    """MockResourceArgs carries neither parent nor options; the registration request does."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self._recording_mocks = mocks

    def RegisterResource(self, request: Any) -> Any:
        self._recording_mocks.registrations[f"{request.type}::{request.name}"] = request
        return super().RegisterResource(request)


def run_program(
    program: Callable[[], Any],
    config: Mapping[str, Any] | None = None,
    *,
    stack: str = "test",
    recording: Recording | None = None,
    invokes: Mapping[str, Mapping[str, Any]] | None = None,
) -> Recording:
    """Run `program` under fresh mocks with `config` (full keys like `kappa:cloud`).

    Exceptions raised by the program propagate; pass `recording` to see what it had declared
    by then.
    """
    mocks = RecordingMocks(invokes)
    if recording is not None:
        mocks.recording = recording
    pulumi.runtime.set_all_config({k: _config_text(v) for k, v in (config or {}).items()})
    pulumi.runtime.set_mocks(
        mocks, project="kappa", stack=stack, preview=False, monitor=_ParentRecordingMonitor(mocks)
    )
    exports: dict[str, Any] = {}
    original_export = pulumi.export

    def capture_export(name: str, value: Any) -> None:
        exports[name] = value
        original_export(name, value)

    pulumi.export = capture_export  # type: ignore[assignment]
    try:
        _sync_await(run_pulumi_func(program))
    except BaseException:
        _cancel_leftover_tasks()
        raise
    finally:
        pulumi.export = original_export  # type: ignore[assignment]
    mocks.recording.outputs = {name: resolve(value) for name, value in exports.items()}
    return mocks.recording


def _cancel_leftover_tasks() -> None:
    """A failed program leaves Outputs and registrations pending on the event loop; the next
    run would pump them and report this run's error as its own."""
    loop = _ensure_event_loop()
    # Cancelling a task can schedule the callbacks of Outputs that waited on it.
    while pending := [task for task in asyncio.all_tasks(loop) if not task.done()]:
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    # A property pyright cannot see through (pulumi's contextproperty).
    getattr(SETTINGS, "outputs").clear()  # noqa: B009


def resolve(value: Any) -> Any:
    """The plain value of an Output (or of a structure holding Outputs)."""
    output = pulumi.Output.from_input(value)
    return _sync_await(output.future())


def _config_text(value: Any) -> str:
    # Pulumi passes every config value to the program as text, objects and arrays as JSON.
    if isinstance(value, str):
        return value
    return json.dumps(value)
