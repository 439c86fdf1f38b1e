"""Compiles .proto files with Debian's protoc and grpc_cpp_plugin into C++ libraries.

mailroom_cc_proto makes one library of a proto package; cc_proto_messages, the message-only
library of one .proto that a package keeps for itself.

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

def cc_proto_messages(name, deps = [], visibility = None):
    """`name`_cc_proto: the message classes (no gRPC) of `name`.proto in this package.

    For a package's own stored formats (the broker's state, the PSN's, the quota ledger's
    records) and the wire formats only it parses, the way cc_pair makes a .h/.cc pair's
    library.

    Args:
      name: the .proto file's base name.
      deps: mailroom_cc_proto targets whose .proto files it imports.
      visibility: passed to the generated targets (the package's default otherwise).
    """
    mailroom_cc_proto(
        name = name + "_cc_proto",
        srcs = [name + ".proto"],
        deps = deps,
        grpc = False,
        visibility = visibility,
    )
