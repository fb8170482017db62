"""Dependency audit: ``pip-audit`` over ``requirements.lock`` against PyPI's advisory database.

``python -m tsplatform_tests.reliability.audit`` (``make audit``; also a ``security`` test) exits 0 when
no advisory outside the allowlist applies, 1 on a finding, and 0 with a clear ``SKIPPED`` line when the
advisory source cannot be reached (offline CI): unreachability is not a finding, a real finding always
fails. The allowlist, ``audit-allowlist.txt`` beside this file, holds one advisory id a line, each with
a ``#`` comment saying why it does not apply and when to look again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = REPO_ROOT / "requirements.lock"
ALLOWLIST = Path(__file__).with_name("audit-allowlist.txt")
ADVISORY_SOURCE = "https://pypi.org/pypi/pip/json"
TIMEOUT_S = 600


@dataclass
class AuditOutcome:
    unreachable: bool
    message: str
    findings: list[str] = field(default_factory=list)


def allowlisted_ids(path: Path = ALLOWLIST) -> list[str]:
    """Advisory ids of the allowlist (text before ``#`` on each line)."""
    if not path.is_file():
        return []
    ids = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [i for i in ids if i]


def advisory_source_reachable(timeout_s: float = 10) -> str | None:
    """``None`` when PyPI's JSON API answers, else why not."""
    try:
        with urllib.request.urlopen(ADVISORY_SOURCE, timeout=timeout_s) as response:
            response.read(1)
        return None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"


def run_audit(lock: Path = LOCK_FILE) -> AuditOutcome:
    """Audit the pinned requirements; findings are ``package==version: id (fix versions)``."""
    why = advisory_source_reachable()
    if why is not None:
        return AuditOutcome(
            True,
            f"dependency audit SKIPPED: the advisory source {ADVISORY_SOURCE} is unreachable ({why}); "
            "run `make audit` where PyPI can be reached",
        )
    ignored = allowlisted_ids()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        cmd = [sys.executable, "-m", "pip_audit", "-r", str(lock), "--no-deps", "--disable-pip",
               "--progress-spinner", "off", "--format", "json", "-o", str(report)]  # fmt: skip
        for advisory in ignored:
            cmd += ["--ignore-vuln", advisory]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
        if not report.is_file():
            text = (proc.stderr or proc.stdout).strip().splitlines()
            cause = text[-1] if text else f"exit code {proc.returncode}"
            if any(w in cause for w in ("ConnectionError", "Max retries", "timed out", "Name or service")):
                return AuditOutcome(True, f"dependency audit SKIPPED: advisory source unreachable ({cause})")
            return AuditOutcome(False, f"pip-audit failed: {cause}", [f"pip-audit failed: {cause}"])
        data = json.loads(report.read_text(encoding="utf-8"))
    findings = [
        f"{dep['name']}=={dep.get('version')}: {v['id']} (fixed in {', '.join(v.get('fix_versions') or '-')})"
        for dep in data.get("dependencies", [])
        for v in dep.get("vulns", [])
        if v["id"] not in ignored and not set(v.get("aliases", [])) & set(ignored)
    ]
    audited = len(data.get("dependencies", []))
    if findings:
        return AuditOutcome(
            False,
            f"dependency audit: {len(findings)} advisory(ies) in {audited} pinned packages outside "
            f"{ALLOWLIST.name}:\n" + "\n".join(findings),
            findings,
        )
    return AuditOutcome(
        False, f"dependency audit: {audited} pinned packages, no advisory outside the allowlist"
    )


def main() -> int:
    outcome = run_audit()
    print(outcome.message)
    return 1 if outcome.findings else 0


if __name__ == "__main__":
    sys.exit(main())
