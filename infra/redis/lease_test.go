package redis

import (
	"context"
	"testing"
	"time"

	"eventlistener/internal/testenv"
)

func TestLease(t *testing.T) {
	srv := testenv.RedisServer(t)
	ctx := context.Background()
	const ttl = 300 * time.Millisecond
	o := Options{URL: "redis://" + srv.Addr}
	a, err := NewLease(o, "el-test", "a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _ := NewLease(o, "el-test", "b", ttl)
	defer b.Close()

	held, tokA, holder, err := a.Try(ctx)
	if err != nil || !held || NodeOf(holder) != "a" {
		t.Fatalf("a's first try: %v %d %s %v", held, tokA, holder, err)
	}
	if held, tok, holder, _ := b.Try(ctx); held || tok != tokA || NodeOf(holder) != "a" {
		t.Fatalf("b took a held lease: %v %d %s", held, tok, holder)
	}
	// a renews past the TTL: b never gets it.
	for range 5 {
		time.Sleep(ttl / 3)
		if held, tok, _, _ := a.Try(ctx); !held || tok != tokA {
			t.Fatalf("a lost its lease while renewing: %v %d", held, tok)
		}
		if held, _, _, _ := b.Try(ctx); held {
			t.Fatal("b took the lease while a renewed it")
		}
	}
	// a stops renewing (frozen, dead): b takes it after the TTL, with a
	// higher fencing token; a's next try finds it gone.
	time.Sleep(ttl + 50*time.Millisecond)
	held, tokB, _, _ := b.Try(ctx)
	if !held || tokB <= tokA {
		t.Fatalf("b after a's lease expired: held %v token %d (a's was %d)", held, tokB, tokA)
	}
	if held, _, holder, _ := a.Try(ctx); held || NodeOf(holder) != "b" {
		t.Fatalf("a after b took over: held %v, holder %s", held, holder)
	}
	// A restarted a is another run: it waits like anyone.
	a2, _ := NewLease(o, "el-test", "a", ttl)
	defer a2.Close()
	if held, _, _, _ := a2.Try(ctx); held {
		t.Fatal("a restarted took b's lease")
	}
	// b releases at a clean stop: a2 takes it at once; a stale release
	// by b later frees nothing.
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if held, tok, _, _ := a2.Try(ctx); !held || tok <= tokB {
		t.Fatalf("a2 after b released: %v %d", held, tok)
	}
	b.Release(ctx)
	if held, _, _, _ := a2.Try(ctx); !held {
		t.Fatal("b's release freed a2's lease")
	}
}
