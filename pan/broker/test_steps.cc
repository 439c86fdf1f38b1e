#include "pan/broker/test_steps.h"

#include "common/base/proto_time.h"

namespace mailroom::broker {

v1::TestStep* StepRunner::Begin(v1::TestStepKind kind) {
  v1::TestStep* step = report_->add_steps();
  step->set_kind(kind);
  step->set_status(v1::TEST_STEP_STATUS_RUNNING);
  ToProto(clock_->Now(), step->mutable_start_time());
  progress_(*step);
  return step;
}

void StepRunner::Pass(v1::TestStep* step, absl::Duration duration, const std::string& detail) {
  step->set_status(v1::TEST_STEP_STATUS_PASSED);
  ToProto(duration, step->mutable_duration());
  step->set_detail(detail);
  progress_(*step);
}

void StepRunner::Fail(v1::TestStep* step, absl::Duration duration, const Diagnosis& diagnosis,
                      const std::string& detail) {
  step->set_status(v1::TEST_STEP_STATUS_FAILED);
  ToProto(duration, step->mutable_duration());
  step->set_detail(detail);
  *step->mutable_diagnosis() = diagnosis;
  progress_(*step);
  report_->set_passed(false);
  report_->set_failed_step(step->kind());
  *report_->mutable_diagnosis() = diagnosis;
}

void StepRunner::Skip(v1::TestStepKind kind, const std::string& why) {
  v1::TestStep* step = report_->add_steps();
  step->set_kind(kind);
  step->set_status(v1::TEST_STEP_STATUS_SKIPPED);
  step->set_detail(why);
  progress_(*step);
}

}  // namespace mailroom::broker
