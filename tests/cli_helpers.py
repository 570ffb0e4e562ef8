"""Helpers shared by the command-line tests: run a command, check a one-line error, load
a script of scripts/."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
from pathlib import Path

from click.testing import CliRunner

from tinysiamese.cli import main


def run(*args, env=None):
    """Invoke ``tinysiamese ARGS...`` in-process; paths and numbers may be passed as is."""
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def assert_one_line_error(result, code, *patterns):
    """The command failed with exit ``code`` and exactly one ``Error:`` line holding every pattern,
    and no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for pattern in patterns:
        assert pattern in errors[0], errors[0]


SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str):
    """scripts/NAME.py as a module (the scripts are not a package); NAME may name a
    subfolder, as in ``load_script("experiments/views_gain")``."""
    spec = importlib.util.spec_from_file_location(Path(name).name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_run(cfg, *, data_root, out_dir, backend=None, seed=None, resume=False, log=None,
              progress=None, max_steps=None, on_bad_image="error"):
    """``train.train`` on the paper's Omniglot splits of ``data_root``, quietly: what the
    `train` command does, without its options. ``seed`` sets run.seed."""
    from tinysiamese.backend import get_backend
    from tinysiamese.runfolder import RunFolder
    from tinysiamese.train import omniglot_data, train

    if seed is not None:
        cfg = cfg.replace("run", seed=seed)
    data = omniglot_data(data_root, cfg.network.image_size, cfg.run.test_trials > 0, on_bad_image)
    return train(cfg, data, backend or get_backend(), RunFolder(out_dir, data_root),
                 resume=resume, log=log or (lambda text: None), progress=progress,
                 max_steps=max_steps)


CLI = [sys.executable, "-c", "from tinysiamese.cli import main; main()"]


def start(argv):
    """Start ``argv`` (a real process) with its output (stdout and stderr) readable line by line."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def read_until(proc, marker, timeout=120):
    """Lines of ``proc``'s output up to the first one holding ``marker``."""
    timer = threading.Timer(timeout, proc.kill)  # a hung child must not hang the suite
    timer.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if marker in line:
                return lines
    finally:
        timer.cancel()
    raise AssertionError(f"{marker!r} never came: {''.join(lines)}")
