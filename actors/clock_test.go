package actors

import (
	"testing"
	"time"
)

func TestCommitClock(t *testing.T) {
	var c commitClock
	if _, ok := c.since(0); ok {
		t.Fatal("an empty clock knows a time")
	}
	t0 := time.Unix(1000, 0)
	for i := range clockSamples + 10 {
		c.note(uint64(i*100), t0.Add(time.Duration(i)*time.Second))
		c.note(uint64(i*100+50), t0.Add(time.Duration(i)*time.Second+time.Millisecond)) // within the second: not kept
	}
	// 10 samples fell out of the ring: offsets below 1000 are older than
	// what is remembered.
	if got, _ := c.since(0); !got.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("since(0) = %v, want the oldest sample", got)
	}
	if got, _ := c.since(2050); !got.Equal(t0.Add(20 * time.Second)) {
		t.Fatalf("since(2050) = %v, want the sample at offset 2000", got)
	}
	last := uint64((clockSamples + 9) * 100)
	if got, _ := c.since(last + 5); !got.Equal(t0.Add(time.Duration(clockSamples+9) * time.Second)) {
		t.Fatalf("since(last) = %v", got)
	}
}
