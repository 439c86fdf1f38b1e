#include "common/base/proto_hash.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "google/protobuf/struct.pb.h"

namespace mailroom {
namespace {

TEST(ProtoHash, Sha256OfKnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256("abc").size(), 32u);
  EXPECT_EQ(absl::BytesToHexString(Sha256("abc")), Sha256Hex("abc"));
}

TEST(ProtoHash, MapOrderDoesNotChangeTheBytes) {
  google::protobuf::Struct a;
  google::protobuf::Struct b;
  for (int i = 0; i < 20; ++i) {
    (*a.mutable_fields())[std::to_string(i)].set_number_value(i);
    (*b.mutable_fields())[std::to_string(19 - i)].set_number_value(19 - i);
  }
  EXPECT_EQ(DeterministicBytes(a), DeterministicBytes(b));
  EXPECT_EQ(ProtoSha256Hex(a), ProtoSha256Hex(b));
  EXPECT_EQ(ProtoSha256Hex(a), Sha256Hex(DeterministicBytes(a)));
  google::protobuf::Struct parsed;
  ASSERT_TRUE(parsed.ParseFromString(DeterministicBytes(a)));
  EXPECT_EQ(parsed.fields().size(), 20u);
}

TEST(ProtoHash, DifferentContentDifferentHash) {
  google::protobuf::Struct a;
  (*a.mutable_fields())["k"].set_string_value("v");
  google::protobuf::Struct b = a;
  (*b.mutable_fields())["k"].set_string_value("w");
  EXPECT_NE(ProtoSha256Hex(a), ProtoSha256Hex(b));
  EXPECT_EQ(ProtoSha256Hex(google::protobuf::Struct()), Sha256Hex(""));
}

}  // namespace
}  // namespace mailroom
