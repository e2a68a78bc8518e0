# Everyday commands. The tests themselves: ./scripts/test (make test).

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@latest

.PHONY: test lint bench run

test:
	./scripts/test

lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	go vet ./...
	go run $(STATICCHECK) ./...

bench:
	go test -run '^$$' -bench . -benchmem ./...

run:
	go run ./cmd/eventlistener
