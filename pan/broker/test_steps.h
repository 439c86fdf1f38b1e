// Provides StepRunner, which records Test Connection's steps in a report as they start and end
// (running → passed / failed / skipped), telling the caller's Progress each time: shared by the
// SMTP and the Graph testers. Not thread-safe: one per run.
#ifndef MAILROOM_PAN_BROKER_TEST_STEPS_H_
#define MAILROOM_PAN_BROKER_TEST_STEPS_H_

#include <string>

#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/base/diagnosis.h"
#include "pan/broker/connection_tester.h"
#include "proto/mailroom/broker/v1/broker.pb.h"

namespace mailroom::broker {

class StepRunner {
 public:
  // `clock`, `progress` and `report` must outlive the runner.
  StepRunner(const Clock* clock, const ConnectionTester::Progress& progress,
             v1::TestConnectionReport* report)
      : clock_(clock), progress_(progress), report_(report) {}

  // Adds a RUNNING step of `kind`, started now.
  v1::TestStep* Begin(v1::TestStepKind kind);
  void Pass(v1::TestStep* step, absl::Duration duration, const std::string& detail);
  // Also fails the report, naming the step and its diagnosis.
  void Fail(v1::TestStep* step, absl::Duration duration, const Diagnosis& diagnosis,
            const std::string& detail);
  void Skip(v1::TestStepKind kind, const std::string& why);

 private:
  const Clock* clock_;
  const ConnectionTester::Progress& progress_;
  v1::TestConnectionReport* report_;
};

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_TEST_STEPS_H_
