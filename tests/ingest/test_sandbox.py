"""The parse sandbox: order kept, hostile files contained, the pool recovers."""

from copilot.ingest.sandbox import ParsePool, ParseTask


def text_task(name: str, text: str) -> ParseTask:
    return ParseTask(text.encode(), name, "text/plain")


def test_results_come_back_in_order_with_markers_passed_through():
    jobs = [(f"k{i}", text_task(f"f{i}.txt", f"file number {i}")) for i in range(8)]
    jobs.insert(3, ("marker", None))
    with ParsePool(workers=2) as pool:
        results = list(pool.run(jobs, window=4))
    assert [k for k, _ in results] == [k for k, _ in jobs]
    assert results[3][1].parsed is None and results[3][1].error is None
    assert "file number 7" in results[-1][1].parsed.elements[0].text


def test_a_parse_error_names_the_file_and_the_next_file_still_parses():
    jobs = [
        ("bad", ParseTask(b"not a zip", "report.docx", None)),
        ("good", text_task("ok.txt", "fine")),
    ]
    with ParsePool(workers=1) as pool:
        results = dict(pool.run(jobs))
    assert "report.docx" in results["bad"].error
    assert results["good"].parsed is not None


def test_a_worker_that_overruns_its_deadline_is_killed_and_replaced():
    big = "word " * 2_000_000  # takes far longer than the deadline to split into paragraphs
    jobs = [("slow", text_task("slow.txt", big)), ("next", text_task("n.txt", "quick"))]
    with ParsePool(workers=1, timeout_s=0.05) as pool:
        results = dict(pool.run(jobs))
        assert "slow.txt" in results["slow"].error and "longer than" in results["slow"].error
        pool.timeout_s = 30
        again = dict(pool.run([("after", text_task("a.txt", "still works"))]))
    assert again["after"].parsed is not None


def test_a_file_that_exhausts_the_memory_limit_fails_alone():
    # More than the worker may hold; made as bytes at once (a str then .encode() was a
    # second 400 MB copy in the suite's own process: its peak RSS came from this line).
    huge = ParseTask(b"x" * (400 * 1024 * 1024), "huge.txt", "text/plain")
    jobs = [("huge", huge), ("small", text_task("s.txt", "tiny"))]
    with ParsePool(workers=1, memory_mb=300, timeout_s=60) as pool:
        results = dict(pool.run(jobs))
    assert results["huge"].parsed is None and "huge.txt" in results["huge"].error
    assert results["small"].parsed is not None
