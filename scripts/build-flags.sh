# Build flags of the two benchmark builds (sourced by scripts/bench-infer.sh and
# scripts/bench-vs-ort.sh; the one place they are written down).
#
# portable:   the default build (`swift build -c release`): baseline x86-64 / arm64 code, runs on
#             any CPU of the architecture; the fast kernels are plain Swift SIMD. (The training
#             engine's float kernels are also compiled for AVX2 in this build and chosen at
#             startup: docs/TRAINING.md, "Float kernels and their two builds".)
# host-tuned: `-target-cpu native` lets LLVM use this CPU's vector units (AVX2 here), and
#             RRAM_EDGE_AVX2 compiles the u8 x i8 crossbar kernel (AVX2 `vpmaddubsw`,
#             docs/DATAPATH.md section 12). The binary needs AVX2 (x86-64-v3) and is not portable
#             to older CPUs. The same flags run the test suite on that kernel:
#               swift test $HOST_TUNED_FLAGS --scratch-path .build-native-test
#             (the CLI tests run the binary at .build/debug/edgecli, or $EDGECLI where they read
#             it: point it, or a .build symlink, at .build-native-test so that they test this build)
PORTABLE_FLAGS=""
HOST_TUNED_FLAGS="-Xswiftc -target-cpu -Xswiftc native"
# the AVX2 kernel only where the host has AVX2 (the compiler cannot lower its intrinsics otherwise)
if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then HOST_TUNED_FLAGS="$HOST_TUNED_FLAGS -Xswiftc -DRRAM_EDGE_AVX2"; fi
PORTABLE_SCRATCH=${PORTABLE_SCRATCH:-.build}
HOST_TUNED_SCRATCH=${HOST_TUNED_SCRATCH:-.build-native}
