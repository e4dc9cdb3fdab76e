"""Changing the agent's passphrase rewraps the node key and the personal-data key; the data stay readable."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sanji_domain import pii
from sanji_node.config import DataDir, NodeConfig
from sanji_node.passphrase import change_passphrase
from sync_protocol.errors import KeyFileError
from sync_protocol.keys import SigningKey
from village_agent.cli import main

OLD, NEW = "旧口令-old-passphrase", "新口令-new-passphrase"


def laptop(tmp_path: Path) -> tuple[DataDir, SigningKey, bytes]:
    data = DataDir(tmp_path / "v11")
    data.create()
    key = SigningKey.generate()
    data.save_key(key, OLD.encode())
    sealer = pii.create_key_file(data.path / "pii.key", OLD, kdf=pii.ScryptParams(n=2**4))
    sealed = sealer.seal("王秀英 430321195501011234".encode(), b"case_pii/x")
    config = NodeConfig("v11", "village", "430321", "county", "00" * 32, "430321101201", parent="t1",
                        passphrase_env="AGENT_PASS")  # fmt: skip
    data.save(config)
    return data, key, sealed


def test_both_keys_are_rewrapped_and_the_data_still_opens(tmp_path: Path) -> None:
    data, key, sealed = laptop(tmp_path)
    assert sorted(change_passphrase(data, OLD, NEW)) == ["node.key", "pii.key"]
    assert SigningKey.from_pem(data.key_path.read_bytes(), NEW.encode()).public.hex == key.public.hex
    assert pii.open_key_file(data.path / "pii.key", NEW).open(sealed, b"case_pii/x").startswith("王秀英".encode())
    with pytest.raises(KeyFileError):
        pii.open_key_file(data.path / "pii.key", OLD)
    with pytest.raises(KeyFileError):
        SigningKey.from_pem(data.key_path.read_bytes(), OLD.encode())


def test_an_interrupted_change_is_finished_by_running_it_again(tmp_path: Path) -> None:
    data, key, _ = laptop(tmp_path)
    pii.change_passphrase(data.path / "pii.key", OLD, NEW)  # power lost before the node key was rewrapped
    assert change_passphrase(data, OLD, NEW) == ["node.key"]
    assert SigningKey.from_pem(data.key_path.read_bytes(), NEW.encode()).public.hex == key.public.hex


def test_a_wrong_or_weak_passphrase_changes_nothing(tmp_path: Path) -> None:
    data, _, _ = laptop(tmp_path)
    before = (data.key_path.read_bytes(), (data.path / "pii.key").read_bytes())
    with pytest.raises(KeyFileError, match="does not open"):
        change_passphrase(data, "not-the-passphrase", NEW)
    with pytest.raises(KeyFileError, match="at least"):
        change_passphrase(data, OLD, "short")
    assert (data.key_path.read_bytes(), (data.path / "pii.key").read_bytes()) == before


def test_the_cli_reads_both_passphrases_from_the_environment(tmp_path: Path) -> None:
    data, _, _ = laptop(tmp_path)
    runner = CliRunner()
    env = {"AGENT_PASS": OLD, "NEW_PASS": NEW}
    out = runner.invoke(main, ["passphrase", "--data", str(data.path), "--new-env", "NEW_PASS"], env=env)
    assert out.exit_code == 0, out.output
    assert "口令已更换" in out.output and "$AGENT_PASS" in out.output
    again = runner.invoke(main, ["passphrase", "--data", str(data.path), "--new-env", "MISSING"], env=env)
    assert again.exit_code == 2 and "MISSING" in again.output
