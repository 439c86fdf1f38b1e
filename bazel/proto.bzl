"""Compiles .proto files with Debian's protoc and grpc_cpp_plugin into one C++ library.

Bazel 4.2.3 offline has no usable rules_proto, so a genrule runs the system compilers. Every
import is resolved from the workspace root (`import "proto/mailroom/common/v1/common.proto";`)
and well-known types from /usr/include, where Debian's protobuf installs them.
"""

def mailroom_cc_proto(name, srcs, deps = [], grpc = True, visibility = None):
    """Declares `name` (a cc_library) and `name_srcs` (the .proto files, transitively).

    Args:
      name: the cc_library's name.
      srcs: .proto files of one proto package.
      deps: other mailroom_cc_proto targets whose .proto files are imported.
      grpc: whether to generate gRPC service stubs.
      visibility: passed to the generated targets.
    """
    native.filegroup(
        name = name + "_srcs",
        srcs = srcs + [d + "_srcs" for d in deps],
        visibility = visibility,
    )

    outs = []
    for src in srcs:
        stem = src[:-len(".proto")]
        outs += [stem + ".pb.h", stem + ".pb.cc"]
        if grpc:
            # The _mock header (gMock stubs for tests) is only compiled where a test includes it.
            outs += [stem + ".grpc.pb.h", stem + ".grpc.pb.cc", stem + "_mock.grpc.pb.h"]

    cmd = "$(location @mailroom//bazel:protoc_wrapper) $(GENDIR)"
    if grpc:
        cmd += " --grpc"
    cmd += " " + " ".join(["$(location %s)" % s for s in srcs])

    native.genrule(
        name = name + "_gen",
        srcs = srcs + [name + "_srcs"],
        outs = outs,
        cmd = cmd,
        tools = ["@mailroom//bazel:protoc_wrapper"],
        message = "protoc " + name,
    )

    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        deps = deps + [
            "@mailroom//third_party:grpc",
            "@mailroom//third_party:protobuf",
        ],
        visibility = visibility,
    )
