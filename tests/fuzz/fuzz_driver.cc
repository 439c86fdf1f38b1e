// Provides the main() that runs a libFuzzer-style fuzz target (a file defining
// LLVMFuzzerTestOneInput) as a deterministic, bounded gtest in the ordinary test suite, with
// gcc and without libFuzzer:
//   FuzzCorpus.EveryFileRuns       every file of the checked-in corpus directory (--corpus,
//                                  relative to the runfiles root), crashes found earlier
//                                  included;
//   FuzzMutations.SeededMutationsRun  --mutations inputs made from the corpus by seeded byte
//                                  flips, inserts, deletes, repeats and splices (--seed), each
//                                  at most --max_len bytes.
// A crash, a sanitizer report or a failed FUZZ_CHECK ends the process; the input that caused
// it is printed (escaped) and written to $TEST_UNDECLARED_OUTPUTS_DIR/crash-input, so that it
// can be replayed: `<test binary> --corpus=... path/to/crash-input` runs only the files given.
// Coverage-guided fuzzing of the same targets is bench/fuzz.sh's (clang, libFuzzer).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

#if defined(__SANITIZE_ADDRESS__)
#define MAILROOM_FUZZ_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MAILROOM_FUZZ_SANITIZED 1
#endif
#endif
#ifdef MAILROOM_FUZZ_SANITIZED
#include <sanitizer/common_interface_defs.h>
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace mailroom::fuzz {
namespace {

struct Flags {
  std::string corpus;            // directory, relative to the runfiles root
  int64_t mutations = 10000;     // inputs made by mutation
  uint64_t seed = 20240601;      // of the mutations
  size_t max_len = 64 * 1024;    // the largest mutated input
  std::vector<std::string> files;  // when given, only these are run (reproducing a crash)
};
Flags flags;

// The input being run, for the crash report (read from a signal handler).
const uint8_t* current_data = nullptr;
size_t current_size = 0;
char current_label[256] = "";

void WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t written = write(fd, data, size);
    if (written <= 0) return;
    data += written;
    size -= static_cast<size_t>(written);
  }
}
void WriteString(int fd, const char* text) { WriteAll(fd, text, strlen(text)); }

// Async-signal-safe: prints the label and up to 4 KiB of the input, escaped, and writes the
// whole input to the test's undeclared outputs.
void ReportCurrentInput() {
  if (current_data == nullptr) return;
  WriteString(STDERR_FILENO, "\n*** fuzz driver: the input that crashed: ");
  WriteString(STDERR_FILENO, current_label);
  WriteString(STDERR_FILENO, "\n*** escaped (at most 4096 bytes): \"");
  static const char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < current_size && i < 4096; ++i) {
    const unsigned char c = current_data[i];
    char out[4] = {static_cast<char>(c), 0, 0, 0};
    size_t length = 1;
    if (c == '\\' || c == '"') {
      out[0] = '\\';
      out[1] = static_cast<char>(c);
      length = 2;
    } else if (c < 0x20 || c >= 0x7f) {
      out[0] = '\\';
      out[1] = 'x';
      out[2] = kHex[c >> 4];
      out[3] = kHex[c & 15];
      length = 4;
    }
    WriteAll(STDERR_FILENO, out, length);
  }
  WriteString(STDERR_FILENO, "\"\n");
  const char* outputs = getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  if (outputs != nullptr && strlen(outputs) < 900) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/crash-input", outputs);
    const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      WriteAll(fd, reinterpret_cast<const char*>(current_data), current_size);
      close(fd);
      WriteString(STDERR_FILENO, "*** written to ");
      WriteString(STDERR_FILENO, path);
      WriteString(STDERR_FILENO, "\n");
    }
  }
}

void OnFatalSignal(int signal_number) {
  ReportCurrentInput();
  ::signal(signal_number, SIG_DFL);
  raise(signal_number);
}

void InstallCrashReporting() {
#ifdef MAILROOM_FUZZ_SANITIZED
  // The sanitizer reports faults itself (a stack overflow included) and then calls back; only
  // abort() (a failed FUZZ_CHECK) is left to us.
  __sanitizer_set_death_callback(ReportCurrentInput);
  const int kSignals[] = {SIGABRT};
#else
  const int kSignals[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
#endif
  // On a stack of its own, so that a stack overflow is reported too.
  static char alternate_stack[64 * 1024];
  stack_t stack = {};
  stack.ss_sp = alternate_stack;
  stack.ss_size = sizeof(alternate_stack);
  sigaltstack(&stack, nullptr);
  struct sigaction action = {};
  action.sa_handler = OnFatalSignal;
  action.sa_flags = SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  for (int signal_number : kSignals) sigaction(signal_number, &action, nullptr);
}

void RunOne(const std::string& input, absl::string_view label) {
  const size_t length = std::min(label.size(), sizeof(current_label) - 1);
  memcpy(current_label, label.data(), length);
  current_label[length] = '\0';
  current_data = reinterpret_cast<const uint8_t*>(input.data());
  current_size = input.size();
  // A copy of exactly `size` bytes on the heap, as libFuzzer passes it, so that a read past
  // the end is a heap overflow the sanitizer sees.
  std::unique_ptr<uint8_t[]> copy(new uint8_t[input.size()]);
  memcpy(copy.get(), input.data(), input.size());
  LLVMFuzzerTestOneInput(copy.get(), input.size());
  current_data = nullptr;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::filesystem::path CorpusDir() {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  if (srcdir == nullptr) return flags.corpus;
  return std::filesystem::path(srcdir) / (workspace != nullptr ? workspace : "mailroom") /
         flags.corpus;
}

// The corpus, sorted by file name so that the mutation run is the same everywhere.
std::vector<std::pair<std::string, std::string>> LoadCorpus() {
  std::vector<std::pair<std::string, std::string>> corpus;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(CorpusDir(), error)) {
    if (!entry.is_regular_file()) continue;
    corpus.emplace_back(entry.path().filename().string(), ReadFile(entry.path()));
  }
  std::sort(corpus.begin(), corpus.end());
  return corpus;
}

// splitmix64: the same sequence with every compiler and library.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform enough in [0, bound); 0 when bound is 0.
  size_t Below(size_t bound) { return bound == 0 ? 0 : static_cast<size_t>(Next() % bound); }

 private:
  uint64_t state_;
};

constexpr unsigned char kInterestingBytes[] = {
    0x00, 0xff, 0x80, 0xc3, 0xe4, 0xf0, 0x7f, '\r', '\n', ' ', '\t', '"', '\\', '{', '}', '<',
    '>', '@', '.', '-', ':', ';', '=', '[', ']', '%', '/', '+', '0', '5', '9', 'x'};
constexpr absl::string_view kInterestingTokens[] = {
    "0", "-1", "255", "65535", "2147483648", "4294967296", "9223372036854775807",
    "-9223372036854775808", "99999999999999999999", "\r\n", "{{", "}}", "\"\"", "=?utf-8?",
    "xn--", "-----", "\xe2\x80\xae", "\xef\xbf\xbd", "\xed\xa0\x80", "\xf4\x90\x80\x80"};

// One input: `base` changed 1 to 4 times.
std::string Mutate(std::string s, const std::vector<std::pair<std::string, std::string>>& corpus,
                   Random& random) {
  const int steps = 1 + static_cast<int>(random.Below(4));
  for (int step = 0; step < steps; ++step) {
    const size_t pos = random.Below(s.size() + 1);
    switch (random.Below(10)) {
      case 0:  // flip one bit
        if (!s.empty()) s[random.Below(s.size())] ^= static_cast<char>(1 << random.Below(8));
        break;
      case 1:  // set a byte to an interesting one
        if (!s.empty()) {
          s[random.Below(s.size())] =
              static_cast<char>(kInterestingBytes[random.Below(sizeof(kInterestingBytes))]);
        }
        break;
      case 2: {  // insert interesting or random bytes
        std::string bytes;
        for (size_t i = 0, n = 1 + random.Below(8); i < n; ++i) {
          bytes += static_cast<char>(random.Below(2) == 0
                                         ? kInterestingBytes[random.Below(sizeof(kInterestingBytes))]
                                         : random.Below(256));
        }
        s.insert(pos, bytes);
        break;
      }
      case 3:  // delete a range
        if (!s.empty()) s.erase(random.Below(s.size()), 1 + random.Below(16));
        break;
      case 4: {  // copy a range of the input elsewhere in it
        if (s.empty()) break;
        const size_t from = random.Below(s.size());
        const std::string chunk = s.substr(from, 1 + random.Below(64));
        s.insert(pos, chunk);
        break;
      }
      case 5: {  // insert a piece of another corpus file
        const std::string& other = corpus[random.Below(corpus.size())].second;
        if (other.empty()) break;
        const size_t from = random.Below(other.size());
        s.insert(pos, other.substr(from, 1 + random.Below(128)));
        break;
      }
      case 6: {  // cross over: this input's head, another's tail
        const std::string& other = corpus[random.Below(corpus.size())].second;
        s = s.substr(0, pos) + other.substr(random.Below(other.size() + 1));
        break;
      }
      case 7: {  // repeat a range many times (long lines, deep nesting, big numbers)
        if (s.empty()) break;
        const size_t from = random.Below(s.size());
        const std::string chunk = s.substr(from, 1 + random.Below(8));
        const size_t times = 1 + random.Below(random.Below(16) == 0 ? 8192 : 32);
        std::string repeated;
        for (size_t i = 0; i < times && repeated.size() < flags.max_len; ++i) repeated += chunk;
        s.insert(from, repeated);
        break;
      }
      case 8:  // insert a boundary number, a separator or an odd UTF-8 sequence
        s.insert(pos, std::string(kInterestingTokens[random.Below(std::size(kInterestingTokens))]));
        break;
      case 9:  // truncate
        s.resize(pos);
        break;
    }
  }
  if (s.size() > flags.max_len) s.resize(flags.max_len);
  return s;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(FuzzCorpus, EveryFileRuns) {
  const auto start = std::chrono::steady_clock::now();
  if (!flags.files.empty()) {
    for (const std::string& file : flags.files) RunOne(ReadFile(file), file);
    std::printf("ran %zu given file(s)\n", flags.files.size());
    return;
  }
  const auto corpus = LoadCorpus();
  ASSERT_FALSE(corpus.empty()) << "no corpus files in " << CorpusDir();
  for (const auto& [name, input] : corpus) RunOne(input, absl::StrCat("corpus file ", name));
  std::printf("ran %zu corpus files from %s in %.2f s\n", corpus.size(), flags.corpus.c_str(),
              SecondsSince(start));
}

TEST(FuzzMutations, SeededMutationsRun) {
  if (!flags.files.empty()) return;  // reproducing given files only
  const auto corpus = LoadCorpus();
  ASSERT_FALSE(corpus.empty()) << "no corpus files in " << CorpusDir();
  Random random(flags.seed);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < flags.mutations; ++i) {
    const auto& [name, base] = corpus[random.Below(corpus.size())];
    const std::string input = Mutate(base, corpus, random);
    RunOne(input, absl::StrCat("mutation ", i, " of ", name, " (seed ", flags.seed, ")"));
  }
  std::printf("ran %lld mutations (seed %llu) in %.2f s\n",
              static_cast<long long>(flags.mutations),
              static_cast<unsigned long long>(flags.seed), SecondsSince(start));
}

bool ParseFlags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    bool ok = true;
    if (absl::StartsWith(arg, "--corpus=")) {
      flags.corpus = std::string(arg.substr(9));
    } else if (absl::StartsWith(arg, "--mutations=")) {
      ok = absl::SimpleAtoi(arg.substr(12), &flags.mutations);
    } else if (absl::StartsWith(arg, "--seed=")) {
      ok = absl::SimpleAtoi(arg.substr(7), &flags.seed);
    } else if (absl::StartsWith(arg, "--max_len=")) {
      ok = absl::SimpleAtoi(arg.substr(10), &flags.max_len);
    } else if (absl::StartsWith(arg, "--")) {
      ok = false;
    } else {
      flags.files.emplace_back(arg);
    }
    if (!ok) {
      std::fprintf(stderr, "fuzz driver: bad flag %s\n", argv[i]);
      return false;
    }
  }
  return true;
}

}  // namespace
}  // namespace mailroom::fuzz

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (!mailroom::fuzz::ParseFlags(argc, argv)) return 2;
  mailroom::fuzz::InstallCrashReporting();
  return RUN_ALL_TESTS();
}
