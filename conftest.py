"""Root conftest: the shared fixtures live in tests/fixtures/ as plugins."""

pytest_plugins = [
    "tests.fixtures.redis",
    "tests.fixtures.bot",
    "tests.fixtures.aws",
    "tests.fixtures.logs",
]


def pytest_configure(config: object) -> None:
    """Under pytest-xdist every worker records its own AWS operations and log lines: the
    controller gives them one folder each to leave their records in (workers inherit the
    environment)."""
    import os  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    if not hasattr(config, "workerinput"):
        if "DHANAM_AWS_OPS_DIR" not in os.environ:
            os.environ["DHANAM_AWS_OPS_DIR"] = tempfile.mkdtemp(prefix="dhanam-aws-ops-")
        if "DHANAM_LOG_LINES_DIR" not in os.environ:
            os.environ["DHANAM_LOG_LINES_DIR"] = tempfile.mkdtemp(prefix="dhanam-log-lines-")


def pytest_sessionfinish(session: object, exitstatus: int) -> None:  # noqa: ARG001 - hook signature
    """The session-wide checks, each run by the controller on what the workers left."""
    _check_iam_coverage(session)
    _check_no_secret_logged(session)


def _check_no_secret_logged(session: object) -> None:
    """Secrets never logged: no log line of the session (the in-process bots' lines as the real
    logging set-up renders them, tracebacks included, and the log files of the bot processes the
    fault tests start) holds a known secret of the fixtures (tests/fixtures/logs.py). With
    xdist, each worker writes its lines and the controller scans them all, then deletes them."""
    import os  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from tests.fixtures.logs import KNOWN_SECRETS, LOG_LINES_DIR, scan_folder  # noqa: PLC0415

    config = session.config  # type: ignore[attr-defined]
    folder = Path(os.environ.get(LOG_LINES_DIR, ""))
    if hasattr(config, "workerinput") or not folder.is_dir():
        return
    scanned, found = scan_folder(folder, KNOWN_SECRETS)
    if found:
        print(f"\n{len(found)} log line(s) hold a known secret of the test fixtures:")
        for finding in found[:50]:
            print(f"  {finding.test}: {finding.secret} in: {finding.line[:500]}")
        session.exitstatus = 1  # type: ignore[attr-defined]
    elif scanned:
        print(
            f"\nno known secret of the fixtures ({len(KNOWN_SECRETS)} values) in any of the "
            f"{scanned} log lines of the session"
        )


def _check_iam_coverage(session: object) -> None:
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
