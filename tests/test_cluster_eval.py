"""scripts/cluster_eval.py: the protocol runs end to end on a fake archive and writes its table."""
from __future__ import annotations

from cli_helpers import load_script


def test_cluster_eval_writes_a_row_per_alphabet_and_the_mean(fake_paper_root, tmp_path, capsys):
    script = load_script("cluster_eval")
    out = tmp_path / "clustering.md"
    assert script.main(["--data", str(fake_paper_root), "--alphabets", "test", "--views", "1",
                        "--neighbours", "3,5", "--cache", str(tmp_path / "cache"),
                        "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("accuracy K known") == 2, "one summary line per setting"
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ")]
    names = [r.split("|")[1].strip() for r in rows[2:]]
    assert names[:-1] == sorted(script.SETS["test"]) and names[-1] == "**mean**", names
    assert all(r.split("|")[2].strip() == "60" for r in rows[2:-1]), "3 characters x 20 drawings"
