#include "common/base/status_macros.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace mailroom {
namespace {

absl::Status FailIf(bool fail) {
  return fail ? absl::InvalidArgumentError("field: bad") : absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<std::string>> MakeText(bool fail) {
  if (fail) return absl::NotFoundError("no text");
  return std::make_unique<std::string>("text");
}

absl::Status Chain(bool first_fails, bool second_fails, int* reached) {
  MR_RETURN_IF_ERROR(FailIf(first_fails));
  ++*reached;
  MR_ASSIGN_OR_RETURN(std::unique_ptr<std::string> text, MakeText(second_fails));
  ++*reached;
  MR_ASSIGN_OR_RETURN(auto again, MakeText(false));
  return *text == *again ? absl::OkStatus() : absl::InternalError("mismatch");
}

TEST(StatusMacrosTest, ReturnIfErrorStopsAtTheFirstError) {
  int reached = 0;
  absl::Status status = Chain(true, false, &reached);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "field: bad");
  EXPECT_EQ(reached, 0);
}

TEST(StatusMacrosTest, AssignOrReturnPropagatesTheStatus) {
  int reached = 0;
  absl::Status status = Chain(false, true, &reached);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(reached, 1);
}

TEST(StatusMacrosTest, AssignOrReturnMovesMoveOnlyValues) {
  int reached = 0;
  EXPECT_TRUE(Chain(false, false, &reached).ok());
  EXPECT_EQ(reached, 2);
}

}  // namespace
}  // namespace mailroom
