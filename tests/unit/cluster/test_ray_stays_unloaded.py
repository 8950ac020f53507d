"""Without --ray, nothing loads Ray: importing the CLI and running a study leave ``ray`` out of sys.modules."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ORCH_TESTS = Path(__file__).resolve().parents[1] / "orchestrator"


def test_a_study_without_ray_never_imports_ray(tmp_path: Path) -> None:
    (tmp_path / "user.yaml").write_text("{}\n")
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ORCH_TESTS)!r})
        import llenergymeasure.orchestrator.cli
        from llenergymeasure import run_study
        from orch_factories import ScriptedRunner, study_of
        result = run_study(study_of(1, 1), output_dir={str(tmp_path / "out")!r}, runner=ScriptedRunner(),
                           skip_preflight=True, quiet=True)
        assert result.status == "completed", result.status
        print("ray loaded:", "ray" in sys.modules)
        """
    )
    env = {"LLEM_CONFIG": str(tmp_path / "user.yaml"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ray loaded: False" in proc.stdout
