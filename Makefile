# mtlab build.  `make` builds build/mtlab (float), `make check` builds the
# test runner over a double-precision build of the same sources and runs it.
#   make SANITIZE=1 check   -- the same under AddressSanitizer + UBSan
#   make deps               -- installs the Debian packages the project needs

CC      ?= cc
# Debian packages the project needs (see README "Dependencies").
DEBS    := build-essential pkg-config libopenblas-dev check libsqlite3-dev sqlite3 libinih-dev \
           libcsv-dev

BASE_CFLAGS := -std=c11 -D_DEFAULT_SOURCE -O2 -g -Wall -Wextra -Wshadow -Wno-unused-parameter \
               -ffp-contract=off -fno-fast-math -MMD -MP -Isrc
BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null)
BLAS_LIBS   := $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
CHECK_CFLAGS:= $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS  := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lpthread)
DEP_CFLAGS  := $(shell pkg-config --cflags sqlite3 inih 2>/dev/null)
DEP_LIBS    := $(shell pkg-config --libs sqlite3 inih 2>/dev/null || echo -lsqlite3 -linih) -lcsv
LIBS        := $(DEP_LIBS) $(BLAS_LIBS) -lm
VERSION     := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

BUILD := build
ifeq ($(SANITIZE),1)
  BASE_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDSAN       := -fsanitize=address,undefined
  BUILD       := build/san
endif

SRC      := $(wildcard src/*/*.c)
LIB_SRC  := $(filter-out src/cli/main.c,$(SRC))
TEST_SRC := $(wildcard tests/*.c)

F_OBJ    := $(SRC:%.c=$(BUILD)/f/%.o)
D_OBJ    := $(LIB_SRC:%.c=$(BUILD)/d/%.o)
T_OBJ    := $(TEST_SRC:%.c=$(BUILD)/d/%.o)

.DEFAULT_GOAL := all
.PHONY: all check deps clean format bench FORCE

# The code version recorded with every experiment: rebuilt on every make.
$(BUILD)/f/src/core/version.o $(BUILD)/d/src/core/version.o: FORCE
$(BUILD)/f/src/core/version.o $(BUILD)/d/src/core/version.o: BASE_CFLAGS += -DMTLAB_VERSION='"$(VERSION)"'
all: $(BUILD)/mtlab
ifneq ($(BUILD),build)
all: build/mtlab
build/mtlab: $(BUILD)/mtlab
	@mkdir -p build && cp $< $@
endif

$(BUILD)/mtlab: $(F_OBJ)
	$(CC) $(LDSAN) -o $@ $^ $(LIBS)

# The test runner: every module except main() compiled with real = double.
$(BUILD)/test_mtlab: $(D_OBJ) $(T_OBJ)
	$(CC) $(LDSAN) -o $@ $^ $(CHECK_LIBS) $(LIBS)

$(BUILD)/f/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(BLAS_CFLAGS) $(DEP_CFLAGS) -c $< -o $@

$(BUILD)/d/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(BLAS_CFLAGS) $(DEP_CFLAGS) $(CHECK_CFLAGS) -DMTLAB_DOUBLE -c $< -o $@

# Integration tests run the real (float) binary; MTLAB_BIN tells them where.
check: $(BUILD)/mtlab $(BUILD)/test_mtlab
	MTLAB_BIN=$(abspath $(BUILD)/mtlab) OPENBLAS_NUM_THREADS=1 $(BUILD)/test_mtlab

deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "all Debian packages present: $(DEBS)"; fi

format:
	clang-format -i src/*/*.[ch] tests/*.[ch]

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
