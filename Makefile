.PHONY: build test ci

build:
	go build ./...

test:
	go test -race ./...

ci:
	bash .ci/run
