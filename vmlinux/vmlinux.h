/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * Arch dispatch for the vendored kernel type dump. build.rs passes
 * -D__TARGET_ARCH_<arch> when it compiles the BPF sources. Regenerate the
 * x86 dump with `make vmlinux`; see README ("Other architectures") for arm64.
 */
#if defined(__TARGET_ARCH_x86)
#include "x86/vmlinux.h"
#elif defined(__TARGET_ARCH_arm64)
#include "arm64/vmlinux.h"
#else
#error "no vendored vmlinux.h for this architecture: run `make vmlinux` on a host of that arch"
#endif
