# assay: every target sets up what it needs (scripts/install-deps.sh).
SHELL := /bin/bash
PREFIX ?= /usr/local
DESTDIR ?=
CARGO ?= cargo
TARGET_TRIPLE ?= $(shell rustc -vV | sed -n 's/^host: //p')
STATIC_BIN := target/$(TARGET_TRIPLE)/release/assay
FUZZ_SECONDS ?= 60

.PHONY: all deps build release run test test-unit test-root check-nomonitor verify \
	static install deb release-bin test-deb lint fmt clean vmlinux bench fuzz

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --release

release: build

# The main job: discover MCP servers on this machine.
run: build
	./target/release/assay discover --local

# Every tier: lint, unit + integration (root tiers run when root; in CI they
# must), the no-clang build, and the kernel tier in QEMU.
test: deps lint check-nomonitor
	$(CARGO) test --all-targets
	$(MAKE) test-deb
	$(MAKE) verify

# Build the Debian package, lint it, install it, check every installed file
# works, purge it (scripts/test-deb.sh; root only, and required in CI).
test-deb: deb
	scripts/test-deb.sh target/debian/assay_$(VERSION)_$(DEB_ARCH).deb

check-nomonitor:
	$(CARGO) check --no-default-features --all-targets

# One release build makes both the static suite and the static assay.
verify: deps
	@scripts/install-deps.sh vm
	scripts/vm/verify.sh

# A fully static binary (glibc, libelf and zlib linked in): `ldd` says "not a
# dynamic executable".
static: deps
	LIBBPF_SYS_LIBRARY_PATH=$$(dirname $$(gcc -print-file-name=libelf.a)) \
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release \
		--features static --target $(TARGET_TRIPLE)
	@ldd $(STATIC_BIN) 2>&1 | grep -qE "not a dynamic executable|statically linked" \
		|| { echo "$(STATIC_BIN) is not static" >&2; exit 1; }
	@echo "static binary: $(STATIC_BIN)"

# What lets an ordinary user run `assay monitor` (permitted only; see
# docs/security.md, "Running without root"). src/caps.rs checks it matches.
CAPS := cap_bpf,cap_perfmon,cap_net_admin,cap_dac_override,cap_chown,cap_setpcap,cap_sys_resource=p

# Every file assay installs (packaging/install.sh: the binary, man pages,
# completions, schemas, example policies, /etc/assay/policy.yaml unless one
# exists, the systemd units, copyright and changelog). As root, the binary
# also gets the file capabilities that let ordinary users run assay monitor.
# BINDIR, MANDIR, DATADIR, UNITDIR, BASHCOMPDIR, ZSHCOMPDIR, FISHCOMPDIR and
# SYSCONFDIR may be set too.
install: release-bin
	PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) packaging/install.sh
	@if [ "$$(id -u)" = 0 ]; then \
		setcap $(CAPS) $(DESTDIR)$(PREFIX)/bin/assay && \
		echo "assay: file capabilities set: ordinary users can run assay monitor"; \
	else \
		echo "assay: not root: for users to run assay monitor, as root: setcap $(CAPS) $(PREFIX)/bin/assay"; \
	fi

VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -1)
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null)

# target/debian/assay_<version>_<arch>.deb (packaging/deb.sh).
deb: release-bin
	packaging/deb.sh

# The one binary install and deb ship (the benchmark binaries are not).
release-bin: deps
	$(CARGO) build --release --bin assay

lint: deps
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --no-default-features --all-targets -- -D warnings
	clang-format --dry-run --Werror src/bpf/*.c src/bpf/*.h

fmt:
	$(CARGO) fmt
	clang-format -i src/bpf/*.c src/bpf/*.h

clean:
	$(CARGO) clean
	rm -rf .cache/vm/work target/debian

# Regenerate the vendored kernel types from this host's BTF.
vmlinux: deps
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/x86/vmlinux.h.new
	mv vmlinux/x86/vmlinux.h.new vmlinux/x86/vmlinux.h

bench: build
	scripts/bench/run.sh

fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)
