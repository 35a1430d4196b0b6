#-------------------------------------------------------------------------
#
# Makefile
#	  Build, install and test pg_dts: the logical decoding output plugin and
#	  the extension (one shared library, pg_dts.so), built with PGXS.
#
# Targets:
#	all			the module, plus the unit test binaries in build/
#	install		install the module and the extension (needs root for the
#				system PostgreSQL)
#	deps		install missing Debian packages (tools/install-deps.sh)
#	unit		build and run tests/unit/test_*.c (libcheck)
#	regress		run tests/regress/run.sh against the INSTALLED extension
#	test		deps, build, install, unit, regress (and tap when present);
#				ends with one line "N passed, N failed"
#	demo		deps, build, install, then tools/demo.sh
#	bench		deps (with wal2json), build, install, then bench/*/run.sh:
#				decode, ship, pgsync, kafka (three ways), fullsync (twice:
#				the harness's destination, and one set up for a bulk load)
#
# Use "make PG_CONFIG=/path/to/pg_config" to build against another server.
#
# Makefile
#
#-------------------------------------------------------------------------

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config

MODULE_big = pg_dts
SRCS = $(sort $(wildcard plugin/*.c common/*.c))
OBJS = $(SRCS:.c=.o)
PGFILEDESC = "pg_dts - logical decoding output plugin for data transmission"

EXTENSION = pg_dts
DATA = $(sort $(wildcard sql/pg_dts--*.sql))

PG_CPPFLAGS = -I$(srcdir)/include
# -Wextra on top of PGXS's own flags; the three -Wno- are what PostgreSQL's
# headers (and its coding style: unnamed-field initializers, int vs Size
# comparisons, unused fcinfo) trip with -Wextra.
WARN_FLAGS = -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare
PG_CFLAGS = $(WARN_FLAGS)

EXTRA_CLEAN = build tests/regress/results tests/regress/regression.diffs \
	tests/regress/regression.out

# On a fresh machine pg_config appears only after "make deps": then only the
# targets that run deps first (test, demo, bench, deps) can work; they build
# in a sub-make, which reads this file again.
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
# The shipper (pg_dts_ship) and the Kafka value formats it links.
include shipper/formats/Makefile.inc
include shipper/Makefile.inc
# The Kafka sink (librdkafka), pg_dts_consume and the Kafka test tools.
include shipper/sinks/Makefile.inc
include consumer/Makefile.inc
all: shipper consumer kafka-tools
install: install-shipper install-consumer
clean: clean-shipper clean-consumer
else
all install installcheck clean:
	@echo "$(PG_CONFIG) not found: run 'make deps' (or 'make test') first" >&2
	@exit 1
endif

# ------------------------------------------------------------------------
# Unit tests: common/*.c compiled again for the frontend (no server headers
# needed, but the client include dir is there for those that want it),
# linked into one binary per tests/unit/test_*.c.
# ------------------------------------------------------------------------

BUILD = build
FE_CC = $(CC)
COMMON_SRCS = $(sort $(wildcard common/*.c))
FE_OBJS = $(patsubst common/%.c,$(BUILD)/fe/%.o,$(COMMON_SRCS))
UNIT_SRCS = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS = $(patsubst tests/unit/%.c,$(BUILD)/%,$(UNIT_SRCS))
DTS_HEADERS = $(wildcard include/pg_dts/*.h)

CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)
HAVE_CHECK := $(shell pkg-config --exists check 2>/dev/null && echo yes)

FE_CPPFLAGS = -DFRONTEND -I$(srcdir)/include -I$(includedir)
FE_CFLAGS = -g -O2 -std=gnu99 $(WARN_FLAGS) -Wmissing-prototypes \
	-Wdeclaration-after-statement -Wpointer-arith

$(BUILD)/fe/%.o: common/%.c $(DTS_HEADERS)
	@mkdir -p $(@D)
	$(FE_CC) $(FE_CPPFLAGS) $(FE_CFLAGS) -c -o $@ $<

# A test may need more than common/*.c: its first line says so, as
#   /* unit-test-sources: shipper/task.c; unit-test-libs: jansson libpq */
# (libs are pkg-config names; "libpq" also works without pkg-config).
unit_meta = $(shell sed -n '1s/.*$(1): *\([^;*]*\).*/\1/p' $(2))
unit_sources = $(call unit_meta,unit-test-sources,tests/unit/$(1).c)
unit_libs = $(foreach l,$(call unit_meta,unit-test-libs,tests/unit/$(1).c),\
	$(if $(filter libpq,$(l)),-L$(libdir) -lpq,$(shell pkg-config --libs $(l))))
unit_cflags = $(foreach l,$(filter-out libpq,$(call unit_meta,unit-test-libs,tests/unit/$(1).c)),\
	$(shell pkg-config --cflags $(l)))

.SECONDEXPANSION:
$(BUILD)/test_%: tests/unit/test_%.c $(FE_OBJS) $(DTS_HEADERS) \
		$$(call unit_sources,test_$$*) $$(wildcard shipper/*.h shipper/*/*.h)
	@mkdir -p $(@D)
	$(FE_CC) $(FE_CPPFLAGS) -I$(srcdir)/shipper -g -O2 $(WARN_FLAGS) \
		$(CHECK_CFLAGS) $(call unit_cflags,test_$*) -o $@ $< \
		$(call unit_sources,test_$*) $(FE_OBJS) \
		$(call unit_libs,test_$*) $(CHECK_LIBS)

# The server module's objects depend on the shared headers too.
$(OBJS): $(DTS_HEADERS) $(wildcard plugin/*.h)

.PHONY: unit-build unit regress tap e2e test demo bench deps deps-bench summary

ifeq ($(HAVE_CHECK),yes)
all: unit-build
else
all: unit-build-skip
unit-build-skip:
	@echo "note: libcheck not found (pkg-config check); unit tests not built; run 'make deps'"
endif

unit-build: $(UNIT_BINS)

# Run every unit binary, even after a failure; count libcheck's checks
# ("Checks: N, Failures: F, Errors: E") into $(BUILD)/unit.counts.  A binary
# that dies without a summary counts as one failure.
unit: unit-build
	@mkdir -p $(BUILD); \
	pass=0; fail=0; \
	for t in $(UNIT_BINS); do \
		echo "== $$t"; \
		out=$$(CK_DEFAULT_TIMEOUT=60 ./$$t 2>&1); rc=$$?; \
		echo "$$out"; \
		line=$$(echo "$$out" | grep -E 'Checks: [0-9]+' | tail -n 1); \
		if [ -n "$$line" ]; then \
			n=$$(echo "$$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/'); \
			f=$$(echo "$$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/'); \
			e=$$(echo "$$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/'); \
			pass=$$((pass + n - f - e)); fail=$$((fail + f + e)); \
			if [ $$rc -ne 0 ] && [ $$((f + e)) -eq 0 ]; then fail=$$((fail + 1)); fi; \
		else \
			echo "$$t: exit $$rc without a libcheck summary"; fail=$$((fail + 1)); \
		fi; \
	done; \
	echo "$$pass $$fail" > $(BUILD)/unit.counts; \
	echo "unit: $$pass passed, $$fail failed"; \
	[ $$fail -eq 0 ]

regress:
	@mkdir -p $(BUILD)
	PG_CONFIG=$(PG_CONFIG) COUNTS_FILE=$(CURDIR)/$(BUILD)/regress.counts \
		tests/regress/run.sh

# Hook for the TAP suites of later issues: tests/tap/run.sh, if present, is
# run with the same contract (COUNTS_FILE gets "passed failed").
tap:
	@mkdir -p $(BUILD)
	@if [ -x tests/tap/run.sh ]; then \
		PG_CONFIG=$(PG_CONFIG) COUNTS_FILE=$(CURDIR)/$(BUILD)/tap.counts \
			tests/tap/run.sh; \
	else \
		echo "tap: no tests/tap/run.sh, skipped"; \
	fi

deps:
	tools/install-deps.sh

deps-bench:
	tools/install-deps.sh --bench

# Every stage writes $(BUILD)/<stage>.counts ("passed failed").
COUNT_FILES = $(BUILD)/*.counts

# End-to-end suites of the sinks and sync tools: every tests/<suite>/run.sh
# other than regress and tap (each starts its own clusters, prints
# "N passed, N failed" and writes COUNTS_FILE).
E2E_SUITES = $(filter-out regress tap,$(notdir $(patsubst %/run.sh,%,\
	$(wildcard tests/*/run.sh))))

e2e:
	@mkdir -p $(BUILD); rc=0; \
	for suite in $(E2E_SUITES); do \
		echo "== e2e: tests/$$suite/run.sh"; \
		PG_CONFIG=$(PG_CONFIG) COUNTS_FILE=$(CURDIR)/$(BUILD)/e2e-$$suite.counts \
			tests/$$suite/run.sh || rc=1; \
		[ -f $(BUILD)/e2e-$$suite.counts ] || echo "0 1" > $(BUILD)/e2e-$$suite.counts; \
	done; \
	exit $$rc

# Sum the stages' counts into the closing line; fail if anything failed.
SUMMARY_SH = pass=0; fail=0; \
	for f in $(COUNT_FILES); do \
		[ -f $$f ] || continue; \
		read p q < $$f; pass=$$((pass + p)); fail=$$((fail + q)); \
	done; \
	echo; \
	echo "$$pass passed, $$fail failed"; \
	[ $$fail -eq 0 ]

summary:
	@$(SUMMARY_SH)

# deps, build and install come first; if one fails nothing else runs and
# it counts as one failure.  Then every test stage runs even if an earlier
# one failed; a stage that fails without writing its counts adds one
# failure (in stages.counts).  The last line is the summary.
test:
	@mkdir -p $(BUILD); rm -f $(COUNT_FILES); \
	if ! { tools/install-deps.sh && $(MAKE) all && $(MAKE) install; }; then \
		echo "test: deps, build or install failed"; \
		echo "0 1" > $(BUILD)/stages.counts; \
	else \
		broken=0; \
		for stage in unit regress tap e2e; do \
			$(MAKE) --no-print-directory $$stage || \
				[ -n "$$(find $(BUILD) -maxdepth 1 -name $$stage.counts \
					-o -name "$$stage-*.counts")" ] || \
				broken=$$((broken + 1)); \
		done; \
		echo "0 $$broken" > $(BUILD)/stages.counts; \
	fi; \
	$(SUMMARY_SH)

demo: deps
	$(MAKE) all
	$(MAKE) install
	PG_CONFIG=$(PG_CONFIG) tools/demo.sh
	PG_CONFIG=$(PG_CONFIG) tools/demo_kafka.sh

bench: deps-bench
	$(MAKE) all
	$(MAKE) install
	PG_CONFIG=$(PG_CONFIG) bench/decode/run.sh
	PG_CONFIG=$(PG_CONFIG) bench/ship/run.sh
	PG_CONFIG=$(PG_CONFIG) bench/pgsync/run.sh
	PG_CONFIG=$(PG_CONFIG) bench/kafka/run.sh
	PG_CONFIG=$(PG_CONFIG) BENCH_HOST=127.0.0.1 BENCH_RESULTS=$${BENCH_RESULTS:-bench/kafka/results_tcp.md} bench/kafka/run.sh
	PG_CONFIG=$(PG_CONFIG) BENCH_PIN=1 BENCH_RESULTS=$${BENCH_RESULTS:-bench/kafka/results_pinned.md} bench/kafka/run.sh
	PG_CONFIG=$(PG_CONFIG) bench/fullsync/run.sh
	PG_CONFIG=$(PG_CONFIG) BENCH_FULL_DST=bulkload BENCH_RESULTS=$${BENCH_RESULTS:-bench/fullsync/results_bulkload.md} bench/fullsync/run.sh
