# schoolgate — the two commands a user needs: `make run` and `make test`.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/schoolgate

.PHONY: all build run test test-short bench bench-search bench-transparent soak fuzz lint clean deb

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/schoolgate

# The gateway on its embedded default config (loopback, unprivileged ports).
run: build
	./$(BIN) serve

# Every test, with the race detector (1.5-3 minutes on a 2-core machine).
# The output is go test's, then a list of the tests that skipped and why
# (a missing curl, dig, chromium ... or not root); the exit status is
# exactly go test's.
test:
	$(GO) vet ./...
	@st=$$(mktemp); \
	{ $(GO) test -race -count=1 -timeout 9m -json ./...; echo $$? >"$$st"; } | $(GO) run ./scripts/testsummary; \
	s=$$(cat "$$st"); rm -f "$$st"; exit $$s

test-short:
	$(GO) test -short -count=1 ./...

# Benchmarks beside the code; the side-by-side peer benchmarks live in bench/.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Long tests kept out of make test: every TestSoak* with SCHOOLGATE_SOAK=1
# (RSS across 20 refreshes of all the public lists, ...).
soak:
	SCHOOLGATE_SOAK=1 $(GO) test -count=1 -timeout 60m -run '^TestSoak' -v ./...

# logs search over 30 days of a million lines (one user), after the days
# were closed and indexed once; prepares ~10 GB in a temp folder (or in
# SCHOOLGATE_BENCH_DIR, kept for the next run) and takes a few minutes.
bench-search:
	SCHOOLGATE_BENCH_SEARCH=1 $(GO) test -run '^$$' -bench BenchmarkSearch30Days -benchtime 5x -timeout 60m ./logging

# Transparent HTTPS new connections/s vs explicit CONNECT vs squid
# (squid-openssl, intercept + peek/splice) in network namespaces; as root,
# about 100 s (bench/transparent/README.md).
bench-transparent:
	bench/transparent/run.sh

# A short fuzzing campaign over every fuzz target (FUZZTIME each).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# The Debian package: dist/schoolgate_VERSION_amd64.deb (docs/install.md).
# nfpm is pinned in packaging/tools/go.mod and built from the module
# cache: offline once `cd packaging/tools && go mod download` has run.
# DEB_CONFIG and DIST are for the package test (a changed config, an
# upgrade); DEB_VERSION comes from git (packaging/version.sh).
DEB_VERSION ?= $(shell packaging/version.sh)
DEB_CONFIG  ?= packaging/debian/schoolgate.yaml
DIST        ?= dist
DEB_BUILD   := $(DIST)/build
deb:
	@mkdir -p $(DEB_BUILD)
	CGO_ENABLED=0 $(GO) build -trimpath -buildmode=pie -ldflags '-s -w -X main.version=$(DEB_VERSION)' \
	  -o $(DEB_BUILD)/schoolgate ./cmd/schoolgate
	$(GO) -C packaging/tools build -o $(abspath $(DEB_BUILD))/nfpm github.com/goreleaser/nfpm/v2/cmd/nfpm
	printf 'schoolgate (%s) unstable; urgency=medium\n\n  * Built from git commit %s.\n\n -- The schoolgate authors <maintainers@schoolgate.example>  %s\n' \
	  '$(DEB_VERSION)' "$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	  "$$(git log -1 --format=%aD 2>/dev/null || date -R)" | gzip -9n > $(DEB_BUILD)/changelog.gz
	gzip -9n < packaging/debian/schoolgate.1 > $(DEB_BUILD)/schoolgate.1.gz
	DEB_VERSION='$(DEB_VERSION)' DEB_BUILD='$(DEB_BUILD)' DEB_CONFIG='$(DEB_CONFIG)' \
	  $(DEB_BUILD)/nfpm package --config packaging/nfpm.yaml --packager deb \
	  --target '$(DIST)/schoolgate_$(DEB_VERSION)_amd64.deb'

clean:
	rm -rf bin dist
