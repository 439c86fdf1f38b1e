#!/bin/bash
# Runs Debian's protoc (and grpc_cpp_plugin) from the execution root, so imports resolve
# from the workspace root. Usage: protoc_wrapper.sh OUT_DIR [--grpc] FILE.proto...
set -euo pipefail
out="$1"
shift
plugin=()
if [[ "${1:-}" == "--grpc" ]]; then
  plugin=(--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin "--grpc_out=generate_mock_code=true:${out}")
  shift
fi
exec /usr/bin/protoc -I. -I/usr/include "--cpp_out=${out}" "${plugin[@]}" "$@"
