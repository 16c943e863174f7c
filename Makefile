# pirec: one Makefile, no recursion. Sources are found by wildcard so that a new
# file in src/<module>/ or tests/unit/ needs no edit here.
#
#   make                 build $(O)/pirec, the record library and the examples
#   make run             install deps, build, start `pirec serve --demo`
#   make check           install deps, build, run every test, then again under ASan+UBSan
#   make install PREFIX=DIR
#   make bench           run the benchmarks in bench/
#   make fuzz            run the libFuzzer harnesses, FUZZ_SECONDS (300) each
#
# O=DIR puts every build product in DIR (default build/), so that several builds
# (plain, sanitizers, a helper's scratch build) can live side by side.

O        ?= build
PREFIX   ?= /usr/local
SAN      ?=
CC       ?= cc
VERSION  := 0.1.0

PKGS     := alsa flac libmicrohttpd libwebsockets jansson openssl inih libudev
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
REC_LIBS   := $(shell pkg-config --libs libwebsockets openssl jansson 2>/dev/null) -pthread

OPT      ?= -O2
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE -DPIREC_VERSION='"$(VERSION)"' \
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

.PHONY: all deps test-deps run check test unit integration install bench clean
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

$(O)/libpirec-record.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(O)/libpirec-record.so: $(LIB_OBJS) src/record/libpirec-record.map
	$(CC) -shared -Wl,-soname,libpirec-record.so.0 -Wl,--version-script=src/record/libpirec-record.map \
	    -o $@ $(LIB_OBJS) $(LDFLAGS_ALL) $(REC_LIBS)

# The soname, so that programs linked against $(O) also run from it.
$(O)/libpirec-record.so.0: $(O)/libpirec-record.so
	ln -sf libpirec-record.so $@

$(O)/libpirec-app.a: $(APP_OBJS) $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(O)/pirec: $(MAIN_OBJ) $(O)/libpirec-app.a
	$(CC) -o $@ $(MAIN_OBJ) $(O)/libpirec-app.a $(LDFLAGS_ALL) $(PKG_LIBS) -lm

$(O)/tests/%: tests/unit/%.c $(TEST_SUPPORT_OBJS) $(O)/libpirec-app.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/support -o $@ $< $(TEST_SUPPORT_OBJS) $(O)/libpirec-app.a \
	    $(LDFLAGS_ALL) $(PKG_LIBS) $(shell pkg-config --libs cmocka) -lm

# The seed's example, built against the library the way a user's program would be.
$(O)/examples/wsrec: examples/wsrec/wsrec.c $(O)/libpirec-record.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(O)/libpirec-record.a $(LDFLAGS_ALL) $(REC_LIBS)

-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)

# ---- running ----------------------------------------------------------------
run: deps
	@$(MAKE) --no-print-directory all
	$(O)/pirec serve --demo

# The whole suite, plain then under sanitizers. tests/run.sh prints one closing
# line "check: N passed, N failed"; with every tool installed, a skip is a failure.
check: test-deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory O=build-san SAN=1 OPT=-O1 all
	@$(MAKE) --no-print-directory fuzz-build
	@PIREC_REQUIRE_ALL=1 tests/run.sh --build $(O) --build build-san

# Faster loop while working: plain build only; T=pattern narrows the tests.
test: all
	@tests/run.sh --build $(O) $(if $(T),--only '$(T)')

# ---- install ------------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/pirec
	install -m 0755 $(O)/pirec $(DESTDIR)$(PREFIX)/bin/pirec
	install -m 0644 $(O)/libpirec-record.a $(DESTDIR)$(PREFIX)/lib/libpirec-record.a
	install -m 0755 $(O)/libpirec-record.so $(DESTDIR)$(PREFIX)/lib/libpirec-record.so.0
	ln -sf libpirec-record.so.0 $(DESTDIR)$(PREFIX)/lib/libpirec-record.so
	install -m 0644 include/pirec/record.h include/pirec/ringbuffer.h $(DESTDIR)$(PREFIX)/include/pirec/
	install -d $(DESTDIR)$(PREFIX)/include/pirec/compat/yoc $(DESTDIR)$(PREFIX)/include/pirec/compat/aos
	install -m 0644 include/pirec/compat/yoc/record.h $(DESTDIR)$(PREFIX)/include/pirec/compat/yoc/
	install -m 0644 include/pirec/compat/aos/ringbuffer.h $(DESTDIR)$(PREFIX)/include/pirec/compat/aos/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' packaging/pirec-record.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/pirec-record.pc

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
	rm -rf build build-san build-fuzz
