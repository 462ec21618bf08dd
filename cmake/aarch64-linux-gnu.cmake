# Cross build for arm64 with Debian's aarch64-linux-gnu-gcc, the arm64
# libraries from Debian's multiarch (libnuma-dev:arm64, libhwloc-dev:arm64,
# libcmocka-dev:arm64) and ctest running the test programs under qemu-user
# (scripts/cross-arm64.sh; README "Architectures"):
#   PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig \
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# the arm64 libraries live in the multiarch folders of the host's root
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# qemu-aarch64(-static) without -L: the guest's dynamic loader and libc are the
# multiarch libc6:arm64 in /lib/aarch64-linux-gnu.  With
# -L /usr/aarch64-linux-gnu the loader of libc6-arm64-cross (another
# build of glibc 2.36) loads the multiarch libc.so.6, and the pair hangs
# in the first pthread_create (a spin in the stack cache walk).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static)
