"""The db restore's outcome says what RDS's status for the new instance means."""

from __future__ import annotations

from commands.operations.restore import _adopted_said, _restore_said


def test_a_restore_still_running_is_restoring_and_names_the_aws_status() -> None:
    assert _restore_said("db-restore-1", "creating") == (
        "restoring into db-restore-1 (AWS status: creating; usable once it is available)"
    )
    assert _restore_said("db-restore-1", None) == (
        "restoring into db-restore-1 (AWS reported no status yet; usable once it is available)"
    )


def test_an_available_instance_is_restored() -> None:
    assert _restore_said("db-restore-1", "available") == (
        "restored into db-restore-1 — AWS reports it available"
    )


def test_an_adopted_restore_says_who_started_it() -> None:
    assert _adopted_said("db-restore-1", "backing-up") == (
        "already restoring into db-restore-1, started by an earlier attempt of this request "
        "(AWS status: backing-up; usable once it is available) — nothing to change"
    )
