package actors

import (
	"sort"
	"sync"
	"time"
)

// commitClock remembers when offsets were written to the WAL, one sample a
// second, so the age of a sink's oldest pending event can be told without
// reading it back. 4,096 samples cover more than an hour; older than that,
// the age is at least that of the oldest sample.
type commitClock struct {
	mu    sync.Mutex
	offs  []uint64
	times []time.Time
	next  int // ring position of the next sample, once full
}

const clockSamples = 4096

// note records that offset at was committed at now, at most once a second.
func (c *commitClock) note(at uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.times); n > 0 {
		last := (c.next - 1 + n) % n
		if n < clockSamples {
			last = n - 1
		}
		if now.Sub(c.times[last]) < time.Second {
			return
		}
	}
	if len(c.offs) < clockSamples {
		c.offs, c.times = append(c.offs, at), append(c.times, now)
		return
	}
	c.offs[c.next], c.times[c.next] = at, now
	c.next = (c.next + 1) % clockSamples
}

// since says when the event at offset at was committed, at the latest
// (within a second), and whether anything is known.
func (c *commitClock) since(at uint64) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.offs)
	if n == 0 {
		return time.Time{}, false
	}
	start := 0
	if n == clockSamples {
		start = c.next
	}
	get := func(i int) int { return (start + i) % n }
	// The last sample at or before at.
	i := sort.Search(n, func(i int) bool { return c.offs[get(i)] > at })
	if i == 0 {
		return c.times[get(0)], true // older than what is remembered
	}
	return c.times[get(i-1)], true
}
