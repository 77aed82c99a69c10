"""Settings and the state folder."""

from __future__ import annotations

import grp
import os
from pathlib import Path

from goldsignals.config import create_private_folder


def test_state_folder_is_created_private(tmp_path: Path) -> None:
    home = tmp_path / "state" / "home"

    create_private_folder(home)

    info = home.stat()
    groups = {group.gr_name: group.gr_gid for group in grp.getgrall()}
    if os.geteuid() == 0 and "postgres" in groups:
        assert info.st_mode & 0o777 == 0o750
        assert info.st_gid == groups["postgres"]
    else:
        assert info.st_mode & 0o777 == 0o700


def test_existing_state_folder_is_left_alone(tmp_path: Path) -> None:
    home = tmp_path / "shared"
    home.mkdir(mode=0o755)
    home.chmod(0o755)

    create_private_folder(home)

    assert home.stat().st_mode & 0o777 == 0o755
