"""Image references, digests and AWS error mapping: pure functions."""

from __future__ import annotations

from botocore.exceptions import NoCredentialsError

from integrations.aws.errors import AwsError, to_aws_error
from integrations.aws.images import (
    ecr_repository,
    is_digest,
    natural_key,
    parse_image,
    short_digest,
)


def test_parse_image_references() -> None:
    ref = parse_image("123456789012.dkr.ecr.us-east-1.amazonaws.com/dhanam-api:v1.2.0@sha256:ab")
    assert (ref.repository_uri, ref.tag, ref.digest) == (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/dhanam-api",
        "v1.2.0",
        "sha256:ab",
    )
    assert parse_image("localhost:5000/app").tag is None
    assert str(parse_image("nginx:1.27")) == "nginx:1.27"


def test_ecr_repository_is_recognised() -> None:
    repo = ecr_repository("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app")
    assert repo is not None
    assert (repo.account_id, repo.region, repo.name) == ("123456789012", "eu-west-1", "team/app")
    assert ecr_repository("docker.io/library/nginx") is None
    assert ecr_repository("public.ecr.aws/nginx/nginx") is None


def test_digests() -> None:
    digest = "sha256:" + "ab" * 32
    assert is_digest(digest)
    assert not is_digest("sha256:ab")
    assert short_digest(digest) == "sha256:abababababab…"
    assert short_digest(None) == "—"


def test_natural_order_of_tags() -> None:
    tags = ["v1.9.0", "v1.10.0", "v1.2.0"]
    assert sorted(tags, key=natural_key) == ["v1.2.0", "v1.9.0", "v1.10.0"]


def test_missing_credentials_read_plainly() -> None:
    error = to_aws_error(NoCredentialsError(), "UpdateService")
    assert isinstance(error, AwsError)
    assert error.code == "NoCredentials"
    assert error.user_message == "AWS credentials not found for UpdateService: nothing was changed"
