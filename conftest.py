"""Root conftest: the shared fixtures live in tests/fixtures/ as plugins."""

pytest_plugins = [
    "tests.fixtures.redis",
    "tests.fixtures.bot",
    "tests.fixtures.aws",
]


def pytest_sessionfinish(session: object, exitstatus: int) -> None:  # noqa: ARG001 - hook signature
    """Least privilege: every AWS operation the bot made in this session must be granted by
    deploy/iam-policy.json (tests/fixtures/aws.py records them through botocore events)."""
    from pathlib import Path  # noqa: PLC0415

    from integrations.aws.iam import load_policy, missing  # noqa: PLC0415
    from tests.fixtures.aws import RECORDED  # noqa: PLC0415

    if not RECORDED:
        return
    gaps = missing(RECORDED, load_policy(Path(__file__).parent / "deploy" / "iam-policy.json"))
    if gaps:
        print(f"\ndeploy/iam-policy.json does not grant: {', '.join(sorted(gaps))}")
        session.exitstatus = 1  # type: ignore[attr-defined]
