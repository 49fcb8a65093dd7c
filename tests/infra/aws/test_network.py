"""The created network: private subnets, endpoints instead of internet, NAT only on request."""

from __future__ import annotations

import pytest

from infra.aws.network import Network, NetworkArgs
from tests.infra.mocks import Recording, run_program


def network(**args) -> Recording:
    return run_program(lambda: Network("n", NetworkArgs(region="eu-west-1", **args)))


@pytest.fixture(scope="module")
def private() -> Recording:
    return network()


def test_subnets_are_private_and_tagged_for_emr(private: Recording):
    subnets = private.of_type("aws:ec2/subnet:Subnet")
    assert len(subnets) == 2
    for subnet in subnets:
        assert subnet["mapPublicIpOnLaunch"] is False
        assert subnet["tags"]["for-use-with-amazon-emr-managed-policies"] == "true"


def test_subnets_spread_over_zones_inside_the_cidr(private: Recording):
    subnets = private.of_type("aws:ec2/subnet:Subnet")
    assert [s["cidrBlock"] for s in subnets] == ["10.64.0.0/20", "10.64.16.0/20"]
    assert [s["availabilityZone"] for s in subnets] == ["us-east-1a", "us-east-1b"]


def test_no_route_to_the_internet_by_default(private: Recording):
    for token in (
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/route:Route",
        "aws:ec2/eip:Eip",
    ):
        assert private.of_type(token) == []


# What calls each AWS API from the private subnets, with no route to the internet.
GATEWAY_ENDPOINTS_EXPECTED = {
    # Spark's writers, the artifacts the bootstrap action reads, EMR's log pusher.
    "s3": "Gateway",
    # The job's DynamoDB sink (jobs/kappa/sinks/dynamodb.py).
    "dynamodb": "Gateway",
}
INTERFACE_ENDPOINTS_EXPECTED = {
    # The nodes reach Amazon EMR itself as well as the services the job calls
    # (https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-clusters-in-a-vpc.html).
    "elasticmapreduce": "Interface",
    # The job's Kinesis reader (jobs/kappa/sources/kinesis.py, or EMR's connector).
    "kinesis-streams": "Interface",
    # EMR's local-disk encryption with the stack key (GenerateDataKey, Decrypt).
    "kms": "Interface",
}


def test_aws_apis_are_reached_through_endpoints(default_stack: Recording):
    """Exactly the endpoints something on the nodes calls, as the whole stack declares them
    (wherever a layer declares its own): each interface endpoint bills by the hour, so one
    for STS (the instance profile's credentials come from the instance metadata service) or
    CloudWatch Logs (EMR pushes logs to S3) fails here, and so does a missing one."""
    endpoints = {
        r["serviceName"].rsplit(".", 1)[1]: r
        for r in default_stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    }
    assert {name: e["vpcEndpointType"] for name, e in endpoints.items()} == {
        **GATEWAY_ENDPOINTS_EXPECTED,
        **INTERFACE_ENDPOINTS_EXPECTED,
    }
    for name in INTERFACE_ENDPOINTS_EXPECTED:
        assert endpoints[name]["privateDnsEnabled"] is True, name


def test_endpoint_security_group_admits_only_https_from_the_vpc(private: Recording):
    group = private.named("n-endpoints")
    (rule,) = group["ingress"]
    assert (rule["fromPort"], rule["toPort"], rule["protocol"]) == (443, 443, "tcp")
    assert rule["cidrBlocks"] == ["10.64.0.0/16"]


def test_the_default_security_group_is_locked_down(private: Recording):
    default = private.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert not default.get("ingress")
    assert not default.get("egress")


def test_nat_egress_adds_one_nat_gateway_and_a_default_route():
    recording = network(egress="nat")
    assert len(recording.of_type("aws:ec2/natGateway:NatGateway")) == 1
    (route,) = recording.of_type("aws:ec2/route:Route")
    assert route["destinationCidrBlock"] == "0.0.0.0/0"
    assert route["natGatewayId"] == "n-nat-id"
    (public,) = [s for s in recording.of_type("aws:ec2/subnet:Subnet") if s.name == "n-public"]
    assert public["mapPublicIpOnLaunch"] is False


def test_nat_and_its_address_wait_for_the_internet_gateway():
    """A NAT gateway needs the VPC's internet gateway attached, which nothing in its inputs
    names: "it is recommended to denote that the NAT Gateway depends on the Internet Gateway
    for the VPC" (https://www.pulumi.com/registry/packages/aws/api-docs/ec2/natgateway/), and
    an EIP in a VPC "may require the IGW to exist prior to association"
    (https://www.pulumi.com/registry/packages/aws/api-docs/ec2/eip/)."""
    recording = network(egress="nat")
    gateway = recording.one("aws:ec2/internetGateway:InternetGateway")
    assert recording.depends_on(recording.one("aws:ec2/natGateway:NatGateway"), gateway)
    assert recording.depends_on(recording.one("aws:ec2/eip:Eip"), gateway)
