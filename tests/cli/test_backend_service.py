"""What the CLI does with the service's answers, without a service: errors, events, objects."""

from __future__ import annotations

import json

from copilot.cli.backend_service import as_local_error, report_of, result_of
from copilot.cli.client import ServiceError, problem, sse_events
from copilot.ingest.pipeline import SyncReport
from copilot.llm.types import Message
from copilot.skills.library.types import SkillNotFound
from copilot.skills.result import RunResult
from copilot.skills.templates.render import TemplateError
from copilot.skills.types import Citation, Source


def test_a_refusal_becomes_the_error_the_command_catches_with_the_services_words() -> None:
    body = {"type": "about:blank", "title": "Invalid input", "status": 422, "code":
            "template_error", "detail": "brief line 3: unknown input 'x'", "line": 3}  # fmt: skip
    error = as_local_error(problem(422, body))
    assert isinstance(error, TemplateError) and isinstance(error, ValueError)
    assert (str(error), error.line, error.status) == ("brief line 3: unknown input 'x'", 3, 422)

    missing = as_local_error(problem(404, {"code": "skill_not_found", "detail": "no skill 'x'"}))
    assert isinstance(missing, SkillNotFound) and isinstance(missing, KeyError)
    assert (str(missing), missing.args[0]) == ("no skill 'x'", "no skill 'x'")

    odd = problem(500, {"code": "internal_error", "detail": "Quote error id 1f2e."})
    assert as_local_error(odd) is odd and isinstance(odd, ServiceError) and odd.status == 500
    assert str(as_local_error(problem(503, {"code": "made_up", "detail": "x"}))) == "x"


def test_server_sent_events_are_read_as_the_api_writes_them() -> None:
    stream = [": run started", "", "event: delta", 'data: {"text": "Hel"}', "", "event: delta",
              'data: {"text": "lo"}', "", "event: done", "data: {}", ""]  # fmt: skip
    assert list(sse_events(iter(stream))) == [
        ("delta", {"text": "Hel"}), ("delta", {"text": "lo"}), ("done", {}),
    ]  # fmt: skip


def test_json_comes_back_as_the_objects_the_in_process_path_returns() -> None:
    report = SyncReport(scope="local:/docs", seen=3, indexed=2, failed=1, chunks=5,
                        failures=[{"item": "local:/docs/x", "reason": "encrypted"}])  # fmt: skip
    counts = {k: v for k, v in report.as_dict().items() if k not in ("scope", "failures")}
    job = {"progress": counts, "failures": report.failures}
    assert report_of(job, "local:/docs") == report

    source = Source(1, "i", "c", "T", "file:///t", "file", {"page": 2}, "text", 0.5)
    result = RunResult(
        skill_id="ask", skill_version="builtin", engine="local", model=None, text="A [1]",
        data={"k": [1]}, citations=[Citation(1, "i", "T", "u", "u#p", {"page": 2}, "page 2")],
        invalid_citations=[4], sources=[source], messages=[Message("user", "q")],
        dropped=[("i", "too long")], run_id="r1",
    )  # fmt: skip
    assert result_of(json.loads(json.dumps(result.as_dict()))) == result


def test_where_the_cli_finds_the_service(settings, tmp_path) -> None:
    import socket
    import subprocess
    import sys

    from copilot.cli.client import ServiceInfo, discovery_path, find_service, write_discovery
    from copilot.cli.serve import loopback_url, uptime_words

    assert loopback_url("0.0.0.0", 80) == loopback_url("localhost", 80) == "http://127.0.0.1:80"
    assert loopback_url("::", 80) == loopback_url("::1", 80) == "http://[::1]:80"
    assert loopback_url("10.1.2.3", 80) is None  # the admin token is not taken from outside
    assert [uptime_words(s) for s in (5, 125, 7260, 90000)] == ["5 s", "2 min", "2 h 1 min",
                                                                 "1 d 1 h 0 min"]  # fmt: skip

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "copilot"])
    try:
        info = ServiceInfo(f"http://127.0.0.1:{port}", alive.pid, 0.0, "127.0.0.1", "t" * 43)
        write_discovery(settings, info)
        assert find_service(settings, timeout=2) is None  # a live pid that does not answer
        assert discovery_path(settings).exists()  # ...is ignored; only a dead one's file goes
    finally:
        alive.kill()
        alive.wait()
    assert find_service(settings) is None and not discovery_path(settings).exists()
