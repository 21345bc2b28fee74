import pytest

from appsuite_agent import cli, trust

from .support import FINGERPRINT, Vendor

# The root this checkout packages with the agent (appsuite_agent/vendor_root.pub).
SHIPPED_ROOT = trust.PACKAGED_ROOT


@pytest.fixture
def vendor(monkeypatch, tmp_path) -> Vendor:
    """The vendor, whose root is packaged with the agent, as a production build carries it.
    No operator setting: the test session's APPSUITE_ROOT_KEY (tests/conftest.py) is unset."""
    v = Vendor()
    packaged = tmp_path / "vendor_root.pub"
    packaged.write_text(v.root_text + "\n")
    monkeypatch.setattr(trust, "PACKAGED_ROOT", packaged)
    monkeypatch.delenv(trust.ROOT_SETTING, raising=False)
    monkeypatch.setenv("APPSUITE_FINGERPRINT", FINGERPRINT)
    return v


@pytest.fixture
def agent(tmp_path, capsys):
    """`agent(*argv)` runs the agent in-process on its own state folder: (exit code, output
    and errors); `agent.stdout` keeps the last run's output alone."""
    state_dir = tmp_path / "state"

    def run(*argv: str) -> tuple[int, str]:
        code = cli.main(["--state-dir", str(state_dir), *argv])
        captured = capsys.readouterr()
        run.stdout = captured.out
        return code, captured.out + captured.err

    run.state_dir = state_dir
    return run
