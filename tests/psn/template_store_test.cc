// Templates: saved per (portal, language, kind) in the data dir, the documented lookup
// chain, template_dir defaults validated at start, listing and deletion.
#include "psn/template_store.h"

#include <filesystem>
#include <fstream>

#include "tests/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/psn/test_util.h"

namespace mailroom::psn {
namespace {

namespace v1 = ::mailroom::psn::v1;
using ::mailroom::psn::testing::IsInvalidField;
using ::mailroom::psn::testing::TestDir;
using ::testing::HasSubstr;

v1::Template Make(const std::string& portal, const std::string& language,
                  const std::string& subject,
                  v1::TemplateKind kind = v1::TEMPLATE_KIND_SELF_REGISTRATION) {
  v1::Template t;
  t.set_portal_id(portal);
  t.set_language(language);
  t.set_kind(kind);
  t.set_subject(subject);
  t.set_text_body("{{username}} {{password}}");
  return t;
}

void WriteFile(const std::string& path, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << content;
}

class TemplateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TestDir();
    auto store = TemplateStore::Open(dir_ + "/templates.pb", "", &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  std::string Resolved(const std::string& portal, const std::string& language) {
    return store_->Resolve(portal, language, v1::TEMPLATE_KIND_SELF_REGISTRATION).subject();
  }

  FakeClock clock_;
  std::string dir_;
  std::unique_ptr<TemplateStore> store_;
};

TEST_F(TemplateStoreTest, LookupFallsBackPortalLanguageThenDefaultsThenBuiltin) {
  EXPECT_EQ(Resolved("lobby", "fr"), "Your guest account for {{portal}}");  // built-in English
  EXPECT_EQ(Resolved("lobby", "zh-TW"), "您的 {{portal}} 訪客帳號");        // built-in Chinese
  ASSERT_TRUE(store_->Put(Make("", "", "default"), false).ok());
  EXPECT_EQ(Resolved("lobby", "fr"), "default");
  ASSERT_TRUE(store_->Put(Make("", "fr", "default fr"), false).ok());
  EXPECT_EQ(Resolved("lobby", "fr"), "default fr");
  EXPECT_EQ(Resolved("lobby", "de"), "default");
  ASSERT_TRUE(store_->Put(Make("lobby", "", "lobby"), false).ok());
  EXPECT_EQ(Resolved("lobby", "fr"), "lobby");
  ASSERT_TRUE(store_->Put(Make("lobby", "fr", "lobby fr"), false).ok());
  EXPECT_EQ(Resolved("lobby", "fr"), "lobby fr");
  EXPECT_EQ(Resolved("lobby", "FR"), "lobby fr") << "languages compare case-insensitively";
  EXPECT_EQ(Resolved("other", "fr"), "default fr");
  EXPECT_EQ(Resolved("other", ""), "default");
  // Other kinds are unaffected.
  EXPECT_EQ(store_->Resolve("lobby", "fr", v1::TEMPLATE_KIND_PASSWORD_RESET).subject(),
            "Your guest password has been reset");
  // Deleting falls back again.
  ASSERT_TRUE(store_->Delete("lobby", "FR", v1::TEMPLATE_KIND_SELF_REGISTRATION).ok());
  EXPECT_EQ(Resolved("lobby", "fr"), "lobby");
  EXPECT_EQ(store_->Delete("lobby", "fr", v1::TEMPLATE_KIND_SELF_REGISTRATION).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(TemplateStoreTest, PutValidatesAndValidateOnlyStoresNothing) {
  v1::Template bad = Make("lobby", "", "x");
  bad.set_html_body("<p>{{pasword}}</p>");
  absl::Status status = store_->Put(bad, false).status();
  EXPECT_TRUE(IsInvalidField(status, "template.html_body"));
  EXPECT_THAT(status.message(), HasSubstr("unknown variable {{pasword}}"));
  auto checked = store_->Put(Make("lobby", "", "checked"), /*validate_only=*/true);
  ASSERT_TRUE(checked.ok());
  EXPECT_FALSE(checked->etag().empty());
  EXPECT_EQ(store_->Get("lobby", "", v1::TEMPLATE_KIND_SELF_REGISTRATION).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(TemplateStoreTest, SavedTemplatesSurviveARestartWithTheirEtags) {
  auto saved = store_->Put(Make("lobby", "zh-TW", "中文"), false);
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->update_time().seconds(), absl::ToUnixSeconds(clock_.Now()));
  auto reopened = TemplateStore::Open(dir_ + "/templates.pb", "", &clock_);
  ASSERT_TRUE(reopened.ok());
  auto got = (*reopened)->Get("lobby", "zh-tw", v1::TEMPLATE_KIND_SELF_REGISTRATION);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->subject(), "中文");
  EXPECT_EQ(got->etag(), saved->etag());
}

TEST_F(TemplateStoreTest, EtagsAreContentHashes) {
  auto a = store_->Put(Make("p", "", "same"), false);
  clock_.Advance(absl::Hours(1));
  auto b = store_->Put(Make("p", "", "same"), false);
  auto c = store_->Put(Make("p", "", "different"), false);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->etag(), b->etag());
  EXPECT_NE(a->etag(), c->etag());
}

TEST_F(TemplateStoreTest, ListIsOrderedFilteredAndPaged) {
  for (const char* portal : {"b", "a", "c"}) {
    ASSERT_TRUE(store_->Put(Make(portal, "", portal), false).ok());
    ASSERT_TRUE(
        store_->Put(Make(portal, "", portal, v1::TEMPLATE_KIND_PASSWORD_RESET), false).ok());
  }
  v1::ListTemplatesRequest request;
  request.mutable_page()->set_page_size(4);
  auto first = store_->List(request);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->templates_size(), 4);
  EXPECT_EQ(first->templates(0).portal_id(), "a");
  EXPECT_EQ(first->templates(1).kind(), v1::TEMPLATE_KIND_PASSWORD_RESET);
  EXPECT_EQ(first->templates(2).portal_id(), "b");
  EXPECT_EQ(first->page().total_size(), 6);
  request.mutable_page()->set_page_token(first->page().next_page_token());
  auto second = store_->List(request);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->templates_size(), 2);
  EXPECT_TRUE(second->page().next_page_token().empty());
  request.set_portal_id("b");
  EXPECT_TRUE(IsInvalidField(store_->List(request).status(), "page.page_token"));
  request.clear_page();
  auto only_b = store_->List(request);
  ASSERT_TRUE(only_b.ok());
  EXPECT_EQ(only_b->templates_size(), 2);
}

TEST(TemplateDirTest, DirectoryTemplatesSitBelowSavedOnesAtTheSameKey) {
  FakeClock clock;
  const std::string dir = TestDir();
  WriteFile(dir + "/tpl/_default/_default/self_registration.subject", "From the dir\n");
  WriteFile(dir + "/tpl/_default/_default/self_registration.txt", "{{username}}\n");
  WriteFile(dir + "/tpl/lobby/zh-TW/self_registration.html", "<p>{{username}}</p>");
  WriteFile(dir + "/tpl/lobby/zh-TW/self_registration.subject", "大廳");
  auto store = TemplateStore::Open(dir + "/t.pb", dir + "/tpl", &clock);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->directory_template_count(), 2u);
  EXPECT_EQ((*store)->Resolve("x", "", v1::TEMPLATE_KIND_SELF_REGISTRATION).subject(),
            "From the dir");
  EXPECT_EQ((*store)->Resolve("lobby", "zh-tw", v1::TEMPLATE_KIND_SELF_REGISTRATION).subject(),
            "大廳");
  ASSERT_TRUE((*store)->Put(Make("", "", "saved"), false).ok());
  EXPECT_EQ((*store)->Resolve("x", "", v1::TEMPLATE_KIND_SELF_REGISTRATION).subject(), "saved");
  EXPECT_EQ((*store)->Resolve("lobby", "zh-TW", v1::TEMPLATE_KIND_SELF_REGISTRATION).subject(),
            "大廳");
}

TEST(TemplateDirTest, ABadFileStopsTheStartNamingTheFile) {
  FakeClock clock;
  const std::string dir = TestDir();
  WriteFile(dir + "/tpl/_default/_default/guest_credentials.subject", "Hi");
  WriteFile(dir + "/tpl/_default/_default/guest_credentials.html", "{{pasword}}");
  absl::Status status = TemplateStore::Open(dir + "/t.pb", dir + "/tpl", &clock).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("guest_credentials.html"));
  EXPECT_THAT(status.message(), HasSubstr("unknown variable {{pasword}}"));

  const std::string other = TestDir() + "/other";
  WriteFile(other + "/_default/_default/welcome.txt", "x");
  status = TemplateStore::Open(dir + "/t.pb", other, &clock).status();
  EXPECT_THAT(status.message(), HasSubstr("welcome.txt"));
  EXPECT_THAT(status.message(), HasSubstr("unknown kind"));
}

}  // namespace
}  // namespace mailroom::psn
