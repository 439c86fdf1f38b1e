"""mailroom_fuzz_test: one fuzz target, run in the suite and buildable for libFuzzer.

For a target NAME (source NAME_fuzzer.cc, corpus corpus/NAME/) it declares:
  NAME_fuzzer_lib   the fuzz target (LLVMFuzzerTestOneInput) as a library;
  NAME_fuzz_test    the suite's test: the target with fuzz_driver.cc's main, run over the corpus
                    and `mutations` seeded mutations, built (with its dependencies, mailroom's
                    code under test included) with gcc's AddressSanitizer and
                    UndefinedBehaviorSanitizer through a configuration transition, so that the
                    ordinary build is unchanged and Debian's unsanitized libraries are linked as
                    they are;
  NAME_fuzzer       the target alone for libFuzzer (tagged manual: `bazel build
                    --config=libfuzzer`, which bench/fuzz.sh runs with clang; //... never builds
                    it with gcc, which has no libFuzzer).
"""

_SANITIZE_COPTS = [
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=undefined",
    "-fno-omit-frame-pointer",
]
_SANITIZE_LINKOPTS = ["-fsanitize=address,undefined"]

def _sanitized_impl(settings, attr):
    return {
        "//command_line_option:copt": settings["//command_line_option:copt"] + _SANITIZE_COPTS,
        "//command_line_option:linkopt": settings["//command_line_option:linkopt"] +
                                         _SANITIZE_LINKOPTS,
    }

_sanitized = transition(
    implementation = _sanitized_impl,
    inputs = ["//command_line_option:copt", "//command_line_option:linkopt"],
    outputs = ["//command_line_option:copt", "//command_line_option:linkopt"],
)

def _sanitized_test_impl(ctx):
    binary = ctx.attr.binary
    if type(binary) == "list":
        binary = binary[0]
    executable = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.symlink(
        output = executable,
        target_file = binary[DefaultInfo].files_to_run.executable,
        is_executable = True,
    )
    runfiles = ctx.runfiles(files = [executable]).merge(binary[DefaultInfo].default_runfiles)
    return [
        DefaultInfo(executable = executable, runfiles = runfiles),
        testing.TestEnvironment({
            "ASAN_OPTIONS": "detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        }),
    ]

_sanitized_test = rule(
    implementation = _sanitized_test_impl,
    test = True,
    attrs = {
        "binary": attr.label(cfg = _sanitized, executable = True, mandatory = True),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)

def mailroom_fuzz_test(name, deps, mutations, size = "medium"):
    """Declares NAME_fuzzer_lib, NAME_fuzz_test and NAME_fuzzer (see the top of this file).

    Args:
      name: the target's name; its source is NAME_fuzzer.cc, its corpus corpus/NAME/.
      deps: what NAME_fuzzer.cc uses, besides :fuzz_check.
      mutations: how many mutated inputs the suite's test runs (keep it well under a minute).
      size: the test's size.
    """
    native.cc_library(
        name = name + "_fuzzer_lib",
        testonly = True,
        srcs = [name + "_fuzzer.cc"],
        deps = deps + [":fuzz_check"],
        alwayslink = True,
    )
    native.cc_binary(
        name = name + "_fuzz_driven",
        testonly = True,
        data = native.glob(["corpus/%s/*" % name]),
        tags = ["manual"],
        deps = [
            name + "_fuzzer_lib",
            ":fuzz_driver",
        ],
    )
    _sanitized_test(
        name = name + "_fuzz_test",
        size = size,
        args = [
            "--corpus=tests/fuzz/corpus/" + name,
            "--mutations=%d" % mutations,
        ],
        binary = name + "_fuzz_driven",
    )
    native.cc_binary(
        name = name + "_fuzzer",
        testonly = True,
        tags = ["manual"],
        deps = [name + "_fuzzer_lib"],
    )
