#!/usr/bin/env python3
"""Tests tools/count_tests.py with the XML and build events Bazel and gtest really write."""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

COUNTER = pathlib.Path(os.environ.get("TEST_SRCDIR", ""), "mailroom/tools/count_tests.py")
if not COUNTER.exists():
  COUNTER = pathlib.Path(__file__).resolve().parents[2] / "tools" / "count_tests.py"

GTEST_PASS = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="2" failures="0" disabled="0" errors="0" name="AllTests">
  <testsuite name="Redactor" tests="2" failures="0" disabled="0" skipped="0" errors="0">
    <testcase name="A" status="run" result="completed" classname="Redactor" />
    <testcase name="B" status="run" result="completed" classname="Redactor" />
  </testsuite>
</testsuites>
"""

# What gtest writes when an ASSERT fails in SetUpTestSuite: every case "skipped", failures="0".
GTEST_SETUP_SUITE_FAILED = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3" failures="0" disabled="0" errors="0" name="AllTests">
  <testsuite name="E2e" tests="3" failures="0" disabled="0" skipped="3" errors="0">
    <testcase name="A" status="run" result="skipped" classname="E2e"><skipped message=""/></testcase>
    <testcase name="B" status="run" result="skipped" classname="E2e"><skipped message=""/></testcase>
    <testcase name="C" status="run" result="skipped" classname="E2e"><skipped message=""/></testcase>
  </testsuite>
</testsuites>
"""

# What Bazel writes itself for a binary that crashed or timed out: a bare <testsuites>.
BAZEL_GENERATED_FAILURE = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="tests/x/crashing_test" tests="1" failures="0" errors="1">
    <testcase name="tests/x/crashing_test" status="run" duration="1" time="1"><error message="exited with error code 134"></error></testcase>
  </testsuite>
</testsuites>
"""

# What Bazel writes for an sh_test that passed.
BAZEL_GENERATED_PASS = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="tests/deploy/units_test" tests="1" failures="0" errors="0">
    <testcase name="tests/deploy/units_test" status="run" duration="0" time="0"></testcase>
  </testsuite>
</testsuites>
"""

# GTEST_SKIP and a DISABLED_ case in a target that Bazel reports PASSED.
GTEST_WITH_SKIPS = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3" failures="0" disabled="1" errors="0" name="AllTests">
  <testsuite name="Mime" tests="3" failures="0" disabled="1" skipped="1" errors="0">
    <testcase name="Runs" status="run" result="completed" classname="Mime" />
    <testcase name="NeedsPython" status="run" result="skipped" classname="Mime"><skipped message="no python"/></testcase>
    <testcase name="DISABLED_Later" status="notrun" result="suppressed" classname="Mime" />
  </testsuite>
</testsuites>
"""

GTEST_ONE_FAILURE = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="2" failures="1" disabled="0" errors="0" name="AllTests">
  <testsuite name="Outbox" tests="2" failures="1" disabled="0" skipped="0" errors="0">
    <testcase name="Good" status="run" result="completed" classname="Outbox" />
    <testcase name="Bad" status="run" result="completed" classname="Outbox"><failure message="x"/></testcase>
  </testsuite>
</testsuites>
"""


class Invocation:
  """Writes the build events and test.xml files of one fake `bazel test` run."""

  def __init__(self, directory):
    self.directory = pathlib.Path(directory)
    self.events = []

  def configure(self, label):
    self.events.append({"id": {"targetConfigured": {"label": label}},
                        "configured": {"targetKind": "cc_test rule", "testSize": "MEDIUM"}})

  def result(self, label, status, xml_text=None, attempt=1, shard=1):
    outputs = []
    if xml_text is not None:
      path = self.directory / label.strip("/").replace(":", "/") / f"{shard}_{attempt}.xml"
      path.parent.mkdir(parents=True, exist_ok=True)
      path.write_text(xml_text)
      outputs.append({"name": "test.xml", "uri": path.as_uri()})
    self.events.append({"id": {"testResult": {"label": label, "run": 1, "shard": shard,
                                              "attempt": attempt}},
                        "testResult": {"testActionOutput": outputs, "status": status}})

  def summary(self, label, status):
    self.events.append({"id": {"testSummary": {"label": label}},
                        "testSummary": {"overallStatus": status}})

  def target(self, label, status, xml_text=None):
    self.configure(label)
    self.result(label, status, xml_text)
    self.summary(label, status)

  def count(self, bazel_exit_code=None):
    bep = self.directory / "bep.json"
    bep.write_text("\n".join(json.dumps(e) for e in self.events) + "\n")
    args = [sys.executable, str(COUNTER), str(bep)]
    if bazel_exit_code is not None:
      args.append(str(bazel_exit_code))
    run = subprocess.run(args, capture_output=True, text=True, check=False)
    return run.returncode, run.stdout.strip().splitlines()


class CountTestsTest(unittest.TestCase):

  def setUp(self):
    self.temp = tempfile.TemporaryDirectory()
    self.run_ = Invocation(self.temp.name)

  def tearDown(self):
    self.temp.cleanup()

  def test_passing_gtest_cases_are_counted_one_by_one(self):
    self.run_.target("//tests/a:a_test", "PASSED", GTEST_PASS)
    self.run_.target("//tests/deploy:units_test", "PASSED", BAZEL_GENERATED_PASS)
    code, lines = self.run_.count(0)
    self.assertEqual(lines[-1], "3 passed, 0 failed")
    self.assertEqual(code, 0)

  def test_failed_set_up_test_suite_fails_every_skipped_case(self):
    self.run_.target("//tests/e2e:psn_e2e_test", "FAILED", GTEST_SETUP_SUITE_FAILED)
    code, lines = self.run_.count(3)
    self.assertEqual(lines[-1], "0 passed, 3 failed")
    self.assertIn("FAILED //tests/e2e:psn_e2e_test (FAILED): 3 failed, 0 passed", lines)
    self.assertNotEqual(code, 0)

  def test_crashed_and_timed_out_targets_with_bazel_xml_are_failures(self):
    self.run_.target("//tests/x:crashing_test", "FAILED", BAZEL_GENERATED_FAILURE)
    self.run_.target("//tests/x:slow_test", "TIMEOUT", BAZEL_GENERATED_FAILURE)
    self.run_.target("//tests/x:no_xml_test", "TIMEOUT", None)
    code, lines = self.run_.count(3)
    self.assertEqual(lines[-1], "0 passed, 3 failed")
    self.assertNotEqual(code, 0)

  def test_skipped_and_disabled_cases_are_reported_not_passed(self):
    self.run_.target("//tests/mail:mime_test", "PASSED", GTEST_WITH_SKIPS)
    code, lines = self.run_.count(0)
    self.assertEqual(lines[-1], "1 passed, 0 failed, 2 skipped")
    self.assertIn("SKIPPED //tests/mail:mime_test: Mime.NeedsPython", lines)
    self.assertIn("SKIPPED //tests/mail:mime_test: Mime.DISABLED_Later", lines)
    self.assertNotEqual(code, 0)

  def test_target_that_did_not_build_or_run_is_a_failure(self):
    self.run_.target("//tests/a:a_test", "PASSED", GTEST_PASS)
    self.run_.configure("//tests/b:broken_test")  # configured, never reported a result
    code, lines = self.run_.count(1)
    self.assertEqual(lines[-1], "2 passed, 1 failed")
    self.assertIn("FAILED //tests/b:broken_test (NO_STATUS): 1 failed, 0 passed", lines)
    self.assertNotEqual(code, 0)

  def test_stale_xml_of_a_target_not_run_is_never_read(self):
    # An old passing test.xml sits where bazel-testlogs keeps it, but this invocation
    # reported no result for the target: it must count as a failure, not as 2 passes.
    stale = self.run_.directory / "tests/b/broken_test/test.xml"
    stale.parent.mkdir(parents=True)
    stale.write_text(GTEST_PASS)
    self.run_.configure("//tests/b:broken_test")
    self.run_.summary("//tests/b:broken_test", "FAILED_TO_BUILD")
    code, lines = self.run_.count(1)
    self.assertEqual(lines[-1], "0 passed, 1 failed")
    self.assertNotEqual(code, 0)

  def test_a_failing_case_is_counted_beside_the_passing_ones(self):
    self.run_.target("//tests/o:outbox_test", "FAILED", GTEST_ONE_FAILURE)
    code, lines = self.run_.count(3)
    self.assertEqual(lines[-1], "1 passed, 1 failed")
    self.assertNotEqual(code, 0)

  def test_only_the_last_attempt_of_a_retried_shard_counts(self):
    label = "//tests/o:outbox_test"
    self.run_.configure(label)
    self.run_.result(label, "FAILED", GTEST_ONE_FAILURE, attempt=1)
    self.run_.result(label, "PASSED", GTEST_PASS, attempt=2)
    self.run_.summary(label, "FLAKY")
    code, lines = self.run_.count(0)
    self.assertEqual(lines[-1], "2 passed, 0 failed")
    self.assertIn(f"FLAKY {label}: passed only on a retry", lines)
    self.assertEqual(code, 0)

  def test_shards_are_summed(self):
    label = "//tests/o:sharded_test"
    self.run_.configure(label)
    self.run_.result(label, "PASSED", GTEST_PASS, shard=1)
    self.run_.result(label, "PASSED", GTEST_PASS, shard=2)
    self.run_.summary(label, "PASSED")
    _, lines = self.run_.count(0)
    self.assertEqual(lines[-1], "4 passed, 0 failed")

  def test_bazel_failure_without_a_failing_target_is_a_failure(self):
    code, lines = self.run_.count(1)
    self.assertEqual(lines[-1], "0 passed, 1 failed")
    self.assertNotEqual(code, 0)

  def test_unreadable_event_file_is_a_failure(self):
    args = [sys.executable, str(COUNTER), str(self.run_.directory / "missing.json"), "0"]
    run = subprocess.run(args, capture_output=True, text=True, check=False)
    self.assertEqual(run.stdout.strip().splitlines()[-1], "0 passed, 1 failed")
    self.assertNotEqual(run.returncode, 0)


if __name__ == "__main__":
  unittest.main()
