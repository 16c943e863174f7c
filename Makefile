# pirec: one Makefile, no recursion. Sources are found by wildcard so that a new
# file in src/<module>/ or tests/unit/ needs no edit here.
#
#   make                 build $(O)/pirec, the record library and the examples
#   make run             install deps, build, start `pirec serve --demo`
#   make check           install deps, build, run every test, again under ASan+UBSan, and
#                        the ARM builds' unit tests and PI_TESTS under qemu-user
#   make install PREFIX=DIR
#   make bench           run the benchmarks in bench/
#   make fuzz            run the libFuzzer harnesses, FUZZ_SECONDS (300) each
#   make cross ARCH=arm64|armhf   cross-build for a Raspberry Pi into build-ARCH/
#   make deb [ARCH=arm64|armhf]   Debian packages (pirec, libpirec-record0, -dev) into deb/
#
# O=DIR puts every build product in DIR (default build/), so that several builds
# (plain, sanitizers, a helper's scratch build) can live side by side.

PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib
SAN      ?=
VERSION  := 0.1.0

# ARCH=arm64|armhf cross-compiles with Debian's cross toolchain and multi-arch -dev
# packages; pkg-config answers for the target. libwebsockets-dev cannot be co-installed
# across architectures, so scripts/install-deps.sh --cross unpacks it into $(O)/lws/.
ARCH     ?=
TRIPLET_arm64 := aarch64-linux-gnu
TRIPLET_armhf := arm-linux-gnueabihf
QEMU_arm64    := qemu-aarch64-static
QEMU_armhf    := qemu-arm-static
ifneq ($(ARCH),)
TRIPLET  := $(TRIPLET_$(ARCH))
ifeq ($(TRIPLET),)
$(error ARCH=$(ARCH) is not supported: use ARCH=arm64 or ARCH=armhf)
endif
O        ?= build-$(ARCH)
CC       := $(TRIPLET)-gcc
AR       := $(TRIPLET)-ar
LWS_DIR  := $(O)/lws
PKG_CONFIG := PKG_CONFIG_LIBDIR=$(LWS_DIR)/pkgconfig:/usr/lib/$(TRIPLET)/pkgconfig:/usr/share/pkgconfig pkg-config
else
O        ?= build
CC       ?= cc
AR       ?= ar
PKG_CONFIG ?= pkg-config
endif

PKGS     := alsa flac libmicrohttpd libwebsockets jansson openssl inih libudev
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
REC_LIBS   := $(shell $(PKG_CONFIG) --libs libwebsockets openssl jansson 2>/dev/null) -pthread
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)

OPT      ?= -O2
# _FILE_OFFSET_BITS=64: takes, downloads and scans past 2 GiB on 32-bit targets (armhf).
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DPIREC_VERSION='"$(VERSION)"' \
              -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
              $(OPT) -g -fPIC -pthread -Iinclude -Isrc $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL := -pthread $(LDFLAGS)
ifeq ($(SAN),1)
CFLAGS_ALL  += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDFLAGS_ALL += -fsanitize=address,undefined
endif

# The record library: the public module and what it needs, nothing of the recorder.
LIB_SRCS := $(sort $(wildcard src/record/*.c) $(wildcard src/common/*.c))
# Everything else except main() goes into an internal archive that the binary and the
# unit tests link against.
APP_SRCS := $(sort $(filter-out src/cli/main.c $(LIB_SRCS),$(wildcard src/*/*.c)))
APP_ASM  := $(sort $(wildcard src/*/*.S))

LIB_OBJS := $(LIB_SRCS:%.c=$(O)/obj/%.o)
APP_OBJS := $(APP_SRCS:%.c=$(O)/obj/%.o) $(APP_ASM:%.S=$(O)/obj/%.o)
MAIN_OBJ := $(O)/obj/src/cli/main.o

UNIT_SRCS  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(O)/tests/%)
TEST_SUPPORT_SRCS := $(sort $(wildcard tests/support/*.c))
TEST_SUPPORT_OBJS := $(TEST_SUPPORT_SRCS:%.c=$(O)/obj/%.o)

EXAMPLE_SRCS := $(sort $(wildcard examples/*/*.c))
EXAMPLE_BINS := $(O)/examples/wsrec

.PHONY: all deps test-deps run check test unit integration install bench clean cross deb fuzz fuzz-build
all: $(O)/pirec $(O)/libpirec-record.a $(O)/libpirec-record.so $(O)/libpirec-record.so.0 $(EXAMPLE_BINS) $(UNIT_BINS)

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

$(O)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

# Assembly files embed the web page with .incbin; they depend on everything in web/.
$(O)/obj/%.o: %.S $(wildcard web/*)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# The compressible files of web/, gzipped at build time for clients that accept it (embedded
# beside the originals by web_assets.S, which finds them through -I).
WEB_GZ := $(patsubst web/%,$(O)/web-gz/%.gz,$(filter-out %.png,$(wildcard web/*)))
$(O)/web-gz/%.gz: web/%
	@mkdir -p $(dir $@)
	gzip -9n -c $< > $@
$(O)/obj/src/server/web_assets.o: $(WEB_GZ)
$(O)/obj/src/server/web_assets.o: CFLAGS_ALL += -I$(O)/web-gz -Wa,-I$(O)/web-gz

$(O)/libpirec-record.a: $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(O)/libpirec-record.so: $(LIB_OBJS) src/record/libpirec-record.map
	$(CC) -shared -Wl,-soname,libpirec-record.so.0 -Wl,--version-script=src/record/libpirec-record.map \
	    -o $@ $(LIB_OBJS) $(LDFLAGS_ALL) $(REC_LIBS)

# The soname, so that programs linked against $(O) also run from it.
$(O)/libpirec-record.so.0: $(O)/libpirec-record.so
	ln -sf libpirec-record.so $@

$(O)/libpirec-app.a: $(APP_OBJS) $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(O)/pirec: $(MAIN_OBJ) $(O)/libpirec-app.a
	$(CC) -o $@ $(MAIN_OBJ) $(O)/libpirec-app.a $(LDFLAGS_ALL) $(PKG_LIBS) -lm

$(O)/tests/%: tests/unit/%.c $(TEST_SUPPORT_OBJS) $(O)/libpirec-app.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/support -o $@ $< $(TEST_SUPPORT_OBJS) $(O)/libpirec-app.a \
	    $(LDFLAGS_ALL) $(PKG_LIBS) $(CMOCKA_LIBS) -lm

# The seed's example, built against the library the way a user's program would be.
$(O)/examples/wsrec: examples/wsrec/wsrec.c $(O)/libpirec-record.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(O)/libpirec-record.a $(LDFLAGS_ALL) $(REC_LIBS)

-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)

# ---- running ----------------------------------------------------------------
run: deps
	@$(MAKE) --no-print-directory all
	$(O)/pirec serve --demo

# The integration tests that matter on a Pi, also run against the ARM builds (qemu-user).
PI_TESTS := record_bitexact record_crash serve_api serve_events serve_repair ingest_send \
            large_take test_cross_ test_armhf_

# The whole suite, plain then under sanitizers, then the Pi's architectures: every unit
# test and PI_TESTS of build-arm64 and build-armhf under qemu. tests/run.sh prints one
# closing line "check: N passed, N failed"; with every tool installed, a skip is a failure.
check: test-deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory O=build-san SAN=1 OPT=-O1 all
	@$(MAKE) --no-print-directory fuzz-build
	@$(MAKE) --no-print-directory cross ARCH=arm64 O=build-arm64
	@$(MAKE) --no-print-directory cross ARCH=armhf O=build-armhf
	@PIREC_REQUIRE_ALL=1 tests/run.sh --build $(O) --build build-san \
	    --exec $(QEMU_arm64) --build build-arm64 --exec $(QEMU_armhf) --build build-armhf \
	    $(foreach t,$(PI_TESTS),--cross-only $(t))

# Faster loop while working: plain build only; T=pattern narrows the tests. With
# ARCH=arm64|armhf (after make cross ARCH=...): that build under qemu, PI_TESTS or T.
test: all
	@tests/run.sh $(if $(ARCH),--exec $(QEMU_$(ARCH)) $(foreach t,$(or $(T),$(PI_TESTS)),--cross-only $(t))) \
	    --build $(O) $(if $(T),--only '$(T)')

# ---- Raspberry Pi ---------------------------------------------------------------
# Cross build: deps for ARCH first (they must exist before pkg-config is asked), then
# the same build as natively, into build-ARCH/.
cross:
	@test -n "$(ARCH)" || { echo "make cross: say which Pi: ARCH=arm64 or ARCH=armhf" >&2; exit 2; }
	@scripts/install-deps.sh --cross $(ARCH) $(O)
	@$(MAKE) --no-print-directory ARCH=$(ARCH) O=$(O) all

# Debian packages (pirec, libpirec-record0, libpirec-record-dev) from debian/ into
# deb/ (ARCH=arm64|armhf cross-builds them). The tree is copied to deb/src/ first:
# dpkg-buildpackage writes next to the source, and the worktree stays clean.
DEB_OUT ?= deb
deb:
	@scripts/install-deps.sh --deb
	rm -rf $(DEB_OUT)/src && mkdir -p $(DEB_OUT)/src/pirec-$(VERSION)
	tar -c --exclude=./.git --exclude='./build*' --exclude='./$(DEB_OUT)' \
	    --exclude=./tests/browser/node_modules --exclude=./tests/artifacts . | \
	    tar -x -C $(DEB_OUT)/src/pirec-$(VERSION)
	cd $(DEB_OUT)/src/pirec-$(VERSION) && \
	    dpkg-buildpackage -b -us -uc $(if $(ARCH),-a$(ARCH) -d -Pnocheck,)
	mv $(DEB_OUT)/src/*.deb $(DEB_OUT)/src/*.changes $(DEB_OUT)/src/*.buildinfo $(DEB_OUT)/
	rm -rf $(DEB_OUT)/src
	@if command -v lintian >/dev/null; then \
	    lintian --fail-on error $(DEB_OUT)/pirec_$(VERSION)_$(or $(ARCH),$(shell dpkg --print-architecture)).changes && \
	    echo "lintian: no errors"; \
	else echo "lintian is not installed: the packages were not checked"; fi
	@ls -1 $(DEB_OUT)/*$(VERSION)_$(or $(ARCH),$(shell dpkg --print-architecture)).deb

# ---- install ------------------------------------------------------------------
# LIBDIR=$(PREFIX)/lib/<multiarch triplet> for a Debian layout (debian/rules sets it).
install: $(O)/pirec $(O)/libpirec-record.a $(O)/libpirec-record.so
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include/pirec
	install -m 0755 $(O)/pirec $(DESTDIR)$(PREFIX)/bin/pirec
	install -m 0644 $(O)/libpirec-record.a $(DESTDIR)$(LIBDIR)/libpirec-record.a
	install -m 0644 $(O)/libpirec-record.so $(DESTDIR)$(LIBDIR)/libpirec-record.so.0
	ln -sf libpirec-record.so.0 $(DESTDIR)$(LIBDIR)/libpirec-record.so
	install -m 0644 include/pirec/record.h include/pirec/ringbuffer.h $(DESTDIR)$(PREFIX)/include/pirec/
	install -d $(DESTDIR)$(PREFIX)/include/pirec/compat/yoc $(DESTDIR)$(PREFIX)/include/pirec/compat/aos
	install -m 0644 include/pirec/compat/yoc/record.h $(DESTDIR)$(PREFIX)/include/pirec/compat/yoc/
	install -m 0644 include/pirec/compat/aos/ringbuffer.h $(DESTDIR)$(PREFIX)/include/pirec/compat/aos/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|^libdir=.*|libdir=$(LIBDIR)|' packaging/pirec-record.pc.in \
	    > $(DESTDIR)$(LIBDIR)/pkgconfig/pirec-record.pc

bench: test-deps all
	@for b in bench/*/run; do echo "== $$b"; $$b --build $(O) || exit 1; done

# ---- fuzzing --------------------------------------------------------------------
# libFuzzer harnesses (tests/fuzz/fuzz_*.c) over every parser a stranger reaches, built
# with clang and -fsanitize=fuzzer,address,undefined into build-fuzz/. `make fuzz` runs
# each for FUZZ_SECONDS from its seed corpus; make check runs each for a few seconds
# (tests/integration/test_fuzz.sh). See tests/fuzz/README.md.
FUZZ_SECONDS ?= 300
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build-fuzz/fuzz/%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
.PHONY: fuzz fuzz-build
fuzz-build:
	@$(MAKE) --no-print-directory O=build-fuzz CC=clang SAN=1 OPT=-O1 \
	    CFLAGS=-fsanitize=fuzzer-no-link $(FUZZ_BINS)

fuzz: test-deps fuzz-build
	@tests/fuzz/run.sh --build build-fuzz --seconds $(FUZZ_SECONDS)

$(O)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz_util.h $(O)/libpirec-app.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -fsanitize=fuzzer -o $@ $< $(O)/libpirec-app.a $(LDFLAGS_ALL) $(PKG_LIBS) -lm

clean:
	rm -rf build build-san build-fuzz build-arm64 build-armhf deb
