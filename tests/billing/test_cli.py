"""`vigie billing run|validate|deposit` on the test database: what a finance user sees, and clear refusals."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import pytest

from billing.metering import Month
from cli.billing import _guarded, cmd_deposit, cmd_run, cmd_validate
from cli.database import department_database
from cli.main import parser
from core.leadership import Leadership
from core.settings import Settings
from tests.billing.conftest import Setup

pytestmark = pytest.mark.integration


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("VIGIE_OBJECTSTORE_ROOT", str(tmp_path / "objects"))
    monkeypatch.setenv("VIGIE_BILLING_FONT_CACHE_DIR", str(tmp_path / "fonts"))
    return tmp_path


def _args(**values: object) -> argparse.Namespace:
    return argparse.Namespace(department="78", no_documents=False, **values)


async def test_run_validate_and_deposit(
    settings: Settings, configured: Setup, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    september = Month(2026, 9)
    code = await cmd_run(settings, _args(month=september))
    out, err = capsys.readouterr()
    assert code == 1  # Mantes-la-Jolie has cameras in service and no contract: said loudly, and the exit code says so
    assert "2026-09: 2 issued" in out
    assert "2 documents stored" in out
    assert "NOT BILLED Mantes-la-Jolie" in err
    assert await cmd_run(settings, _args(month=september)) == 1
    assert "0 issued, 2 already issued" in capsys.readouterr().out
    assert await cmd_validate(settings, _args(month=september)) == 0
    assert "2 of 2 documents valid (XSD and EN 16931 schematron)" in capsys.readouterr().out
    assert await cmd_deposit(settings, _args(month=september, out=str(isolated))) == 0
    with zipfile.ZipFile(isolated / "chorus-pro-2026-09.zip") as deposit:
        assert len(deposit.namelist()) == 2


async def test_refusals_are_plain_sentences(
    settings: Settings, configured: Setup, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _guarded(cmd_run)(settings, _args(month=Month(2099, 1))) == 2
    assert "2099-01 has not ended yet" in capsys.readouterr().err
    assert await _guarded(cmd_run)(settings, argparse.Namespace(department="2B", no_documents=False,
                                                                 month=Month(2026, 9))) == 2
    assert "no department coded 2B" in capsys.readouterr().err
    several = await _guarded(cmd_run)(settings, argparse.Namespace(department=None, no_documents=False,
                                                                    month=Month(2026, 9)))
    if several == 2:  # other suites of the run seeded more departments: the command asks which one
        assert "name one with --department" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser().parse_args(["billing", "run", "--month", "2026-13"])
    assert "is not a month" in capsys.readouterr().err


async def test_a_second_run_of_the_same_department_waits_for_none_and_does_nothing(
    settings: Settings, configured: Setup, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two scheduled jobs (or two operators) starting the month's run together: the advisory-lock leadership lets one
    run; the other says so and bills nothing."""
    async with department_database(settings) as lock_db, Leadership(lock_db, "billing-run:78").term() as first:
        assert first is not None
        assert await cmd_run(settings, _args(month=Month(2026, 8))) == 1
        out, err = capsys.readouterr()
        assert "a billing run of department 78 is already under way; nothing done" in err
        assert "issued" not in out
