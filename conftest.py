"""Root conftest: the shared fixtures live in tests/fixtures/ as plugins."""

pytest_plugins = [
    "tests.fixtures.redis",
    "tests.fixtures.bot",
    "tests.fixtures.aws",
]


def pytest_configure(config: object) -> None:
    """Under pytest-xdist every worker records its own AWS operations: the controller gives
    them one folder to leave their records in (workers inherit the environment)."""
    import os  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    if not hasattr(config, "workerinput") and "DHANAM_AWS_OPS_DIR" not in os.environ:
        os.environ["DHANAM_AWS_OPS_DIR"] = tempfile.mkdtemp(prefix="dhanam-aws-ops-")


def pytest_sessionfinish(session: object, exitstatus: int) -> None:  # noqa: ARG001 - hook signature
    """Least privilege: every AWS operation the bot made in this session must be granted by
    deploy/iam-policy.json (tests/fixtures/aws.py records them through botocore events). With
    xdist, each worker writes what it recorded and the controller checks the union."""
    import os  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from integrations.aws.iam import load_policy, missing  # noqa: PLC0415
    from tests.fixtures.aws import RECORDED  # noqa: PLC0415

    folder = Path(os.environ.get("DHANAM_AWS_OPS_DIR", ""))
    config = session.config  # type: ignore[attr-defined]
    if hasattr(config, "workerinput"):
        if RECORDED and folder.is_dir():
            worker = config.workerinput["workerid"]
            (folder / f"{worker}.txt").write_text("\n".join(sorted(RECORDED)))
        return
    recorded = set(RECORDED)
    if folder.is_dir():
        for part in folder.glob("*.txt"):
            recorded |= {line for line in part.read_text().splitlines() if line}
    if not recorded:
        return
    gaps = missing(recorded, load_policy(Path(__file__).parent / "deploy" / "iam-policy.json"))
    if gaps:
        print(f"\ndeploy/iam-policy.json does not grant: {', '.join(sorted(gaps))}")
        session.exitstatus = 1  # type: ignore[attr-defined]
    else:
        print(f"\nIAM policy covers all {len(recorded)} AWS operations the tests made")
