#!/usr/bin/env python3
"""Counts test cases of one `bazel test` invocation from Bazel's own results.

Reads the Build Event Protocol file the invocation wrote (--build_event_json_file) and, for
each test target it configured, Bazel's overall status and the test.xml of *this* invocation's
run (never an older file left in bazel-testlogs). Prints one line per target that did not pass
cleanly, then "N passed, N failed" (", N skipped" appended when any case was skipped).

Rules (each one closes a way the old count could lie):
  - A target whose status is not PASSED (FAILED, TIMEOUT, NO_STATUS, FAILED_TO_BUILD,
    INCOMPLETE, ...) counts every case that did not pass as failed, and at least one: gtest
    marks every case "skipped" with failures="0" when SetUpTestSuite fails, and the XML Bazel
    writes itself for a crashed or timed-out binary has one synthetic case.
  - A configured test target with no result at all (it failed to build, or the run stopped
    before it) is a failure.
  - A case skipped with GTEST_SKIP or DISABLED_ is reported as skipped, never as passed.
  - A passing target whose XML has no case (an sh_test, Bazel's generated XML) counts as one.
Exit status: 0 only when nothing failed and nothing was skipped.

  count_tests.py BEP_JSON_FILE [BAZEL_EXIT_CODE]
"""

import collections
import json
import sys
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree

PASSED_STATUSES = ("PASSED", "FLAKY")


def _path_from_uri(uri):
  parsed = urllib.parse.urlparse(uri)
  if parsed.scheme != "file":
    return None
  return urllib.request.url2pathname(parsed.path)


def read_events(bep_path):
  """Returns (test target labels, {label: overall status}, {label: [xml paths]})."""
  configured = []
  statuses = {}
  xml_by_attempt = {}
  with open(bep_path, encoding="utf-8") as bep:
    for line in bep:
      line = line.strip()
      if not line:
        continue
      event = json.loads(line)
      event_id = event.get("id", {})
      if "targetConfigured" in event_id:
        kind = event.get("configured", {}).get("targetKind", "")
        if kind.endswith("_test rule") or "testSize" in event.get("configured", {}):
          configured.append(event_id["targetConfigured"]["label"])
      elif "testSummary" in event_id:
        label = event_id["testSummary"]["label"]
        statuses[label] = event.get("testSummary", {}).get("overallStatus", "NO_STATUS")
      elif "testResult" in event_id:
        result_id = event_id["testResult"]
        key = (result_id["label"], result_id.get("run", 1), result_id.get("shard", 1))
        attempt = result_id.get("attempt", 1)
        outputs = event.get("testResult", {}).get("testActionOutput", [])
        xml = next((_path_from_uri(o.get("uri", "")) for o in outputs
                    if o.get("name") == "test.xml"), None)
        # Keep the last attempt of each run and shard: earlier attempts were retried.
        if key not in xml_by_attempt or attempt >= xml_by_attempt[key][0]:
          xml_by_attempt[key] = (attempt, xml)
  xml_paths = collections.defaultdict(list)
  for (label, _, _), (_, xml) in sorted(xml_by_attempt.items()):
    xml_paths[label].append(xml)
  return configured, statuses, xml_paths


def count_cases(xml_path):
  """Returns (passed, failed, skipped names) for one test.xml; None if unreadable."""
  try:
    root = ElementTree.parse(xml_path).getroot()
  except (OSError, ElementTree.ParseError):
    return None
  passed, failed, skipped = 0, 0, []
  for case in root.iter("testcase"):
    name = ".".join(filter(None, (case.get("classname"), case.get("name"))))
    if case.find("failure") is not None or case.find("error") is not None:
      failed += 1
    elif (case.find("skipped") is not None or case.get("result") == "skipped" or
          case.get("status") == "notrun"):
      skipped.append(name)
    else:
      passed += 1
  return passed, failed, skipped


def main(argv):
  if len(argv) not in (2, 3):
    print("usage: " + __doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
    return 2
  bazel_exit_code = int(argv[2]) if len(argv) == 3 else 0
  try:
    configured, statuses, xml_paths = read_events(argv[1])
  except (OSError, ValueError) as error:
    print(f"FAILED: cannot read Bazel's results ({error})")
    configured, statuses, xml_paths = [], {}, {}
    bazel_exit_code = bazel_exit_code or 1
  labels = list(dict.fromkeys(configured + list(statuses)))
  total_passed = total_failed = total_skipped = 0
  for label in labels:
    status = statuses.get(label, "NO_STATUS")
    passed = failed = 0
    skipped = []
    unreadable = 0
    for xml in xml_paths.get(label, []):
      counts = count_cases(xml) if xml else None
      if counts is None:
        unreadable += 1
        continue
      passed += counts[0]
      failed += counts[1]
      skipped += counts[2]
    if status in PASSED_STATUSES:
      if passed + failed + len(skipped) == 0:
        passed = 1  # no case in the XML: the target itself is the one test
      if unreadable:
        failed += unreadable
        print(f"FAILED {label}: passed but {unreadable} result(s) without readable XML")
      for name in skipped:
        print(f"SKIPPED {label}: {name}")
      total_skipped += len(skipped)
    else:
      # Whatever did not pass in a failing target failed, including cases gtest marked
      # skipped because SetUpTestSuite failed; at least one failure per failing target.
      failed = max(1, failed + len(skipped))
      print(f"FAILED {label} ({status}): {failed} failed, {passed} passed")
    if status == "FLAKY":
      print(f"FLAKY {label}: passed only on a retry")
    total_passed += passed
    total_failed += failed
  if bazel_exit_code != 0 and total_failed == 0:
    # A build or analysis error stops Bazel before any test target reports.
    print(f"FAILED: bazel exited with {bazel_exit_code} and no test target reported why")
    total_failed = 1
  summary = f"{total_passed} passed, {total_failed} failed"
  if total_skipped:
    summary += f", {total_skipped} skipped"
  print(summary)
  return 0 if total_failed == 0 and total_skipped == 0 else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv))
