# hark: build, test, run, bench, install.
#
#   make              build/harkd
#   make SANITIZE=1   build-san/harkd (AddressSanitizer + UndefinedBehaviorSanitizer)
#   make test         everything the README promises: unit tests (plain and
#                     sanitized), fuzzers (briefly), integration tests, contract smoke
#   make run          start harkd on conf/dev.conf with a private redis-server
#   make bench        the benchmark (prints figures, asserts nothing about speed)
#   make install      PREFIX=/usr/local DESTDIR=

PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
DESTDIR ?=
CC ?= cc
PYTHON ?= /usr/bin/python3

PKGS := libevent libevent_pthreads libevent_openssl hiredis jansson libcurl openssl \
        libsystemd gmime-3.0 libxml-2.0
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

ifeq ($(SANITIZE),1)
BUILD ?= build-san
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
OPT := -O1
else
BUILD ?= build
SAN_FLAGS :=
OPT := -O2
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wformat=2
CFLAGS_ALL := -std=gnu11 $(OPT) -g $(WARN) $(SAN_FLAGS) -D_GNU_SOURCE \
              -DHARK_VERSION='"$(VERSION)"' -Iinclude -Isrc $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL := $(SAN_FLAGS) $(LDFLAGS)
LIBS := $(PKG_LIBS) -lpthread -lm

LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c)) $(wildcard adapters/*/*.c)
LUA_SRC := $(wildcard src/*.lua)
GEN_SRC := $(patsubst src/%.lua,$(BUILD)/gen/%_lua.c,$(LUA_SRC))
LIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/gen/%.o,$(GEN_SRC))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))

.PHONY: all deps test unit unit-san fuzz integration smoke run bench install clean check lint

all: $(BUILD)/harkd

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# Lua scripts are embedded: src/NAME.lua becomes the array hark_NAME_lua.
$(BUILD)/gen/%_lua.c: src/%.lua scripts/embed.sh
	@mkdir -p $(dir $@)
	sh scripts/embed.sh hark_$*_lua $< > $@

$(BUILD)/libhark.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/harkd: $(BUILD)/obj/src/main.o $(BUILD)/libhark.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/harness.h $(BUILD)/libhark.a
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS_ALL) -Itests/unit -o $@ $< $(BUILD)/libhark.a $(LDFLAGS_ALL) $(LIBS) -lcmocka

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

deps:
	sh scripts/deps.sh

# Unit tests of pure code, run from the repository root (they read ../shared/vectors).
unit: $(UNIT_BIN)
	@sh scripts/run-unit.sh $(UNIT_BIN)

unit-san:
	$(MAKE) SANITIZE=1 unit

# libFuzzer targets: the library is compiled once with clang's fuzzer
# instrumentation, then each target links against it.
FUZZ_CFLAGS := -std=gnu11 -O1 -g -fsanitize=fuzzer-no-link,address,undefined -D_GNU_SOURCE \
               -DHARK_VERSION='"$(VERSION)"' -Iinclude -Isrc $(PKG_CFLAGS)
FUZZ_OBJ := $(patsubst %.c,build-fuzz/obj/%.o,$(LIB_SRC)) \
            $(patsubst $(BUILD)/gen/%.c,build-fuzz/obj/gen/%.o,$(GEN_SRC))

build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CLANG   $<"
	@clang $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

build-fuzz/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c $< -o $@

build-fuzz/libhark-fuzz.a: $(FUZZ_OBJ)
	rm -f $@
	ar rcs $@ $^

build-fuzz/%: tests/fuzz/%.c build-fuzz/libhark-fuzz.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< build-fuzz/libhark-fuzz.a $(LIBS)

-include $(shell find build-fuzz/obj -name '*.d' 2>/dev/null)

FUZZ_SECONDS ?= 10
fuzz: $(FUZZ_BIN)
	@sh scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

integration: all
	$(MAKE) SANITIZE=1 all
	sh tests/imap_driver/build.sh build-san
	HARKD=$(CURDIR)/build-san/harkd $(PYTHON) -m pytest -q tests/integration

smoke: all
	$(PYTHON) ../shared/contract/smoke.py build/harkd

test: deps
	$(MAKE) all
	$(MAKE) check
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) unit-san
	$(MAKE) fuzz
	$(MAKE) integration
	@if [ -f ../shared/contract/smoke.py ]; then $(MAKE) smoke; fi

run: deps all
	sh scripts/run-dev.sh

bench: deps all
	$(PYTHON) tests/bench/bench_all.py

# The shipped configurations must pass harkd -t (secrets given dummy values).
check: all
	sh scripts/checksrc.sh
	TWILIO_AUTH_TOKEN=check $(BUILD)/harkd -t -c conf/harkd.conf.example
	HARK_DEV_TWILIO_TOKEN=a HARK_DEV_VONAGE_SECRET=b HARK_DEV_WEB_SECRET=c \
	    $(BUILD)/harkd -t -c conf/dev.conf

lint:
	sh scripts/lint.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(SYSCONFDIR)/hark \
	    $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/lib/sysusers.d \
	    $(DESTDIR)$(PREFIX)/lib/tmpfiles.d $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 0755 $(BUILD)/harkd $(DESTDIR)$(PREFIX)/sbin/harkd
	install -m 0640 conf/harkd.conf.example $(DESTDIR)$(SYSCONFDIR)/hark/harkd.conf.example
	test -e $(DESTDIR)$(SYSCONFDIR)/hark/harkd.conf || \
	    install -m 0640 conf/harkd.conf.example $(DESTDIR)$(SYSCONFDIR)/hark/harkd.conf
	sed 's|@SBINDIR@|$(PREFIX)/sbin|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g' systemd/harkd.service.in \
	    > $(DESTDIR)$(PREFIX)/lib/systemd/system/harkd.service
	install -m 0644 systemd/harkd.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/harkd.conf
	install -m 0644 systemd/harkd.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/harkd.conf
	install -m 0644 docs/harkd.8 $(DESTDIR)$(PREFIX)/share/man/man8/harkd.8

clean:
	rm -rf build build-san build-fuzz
