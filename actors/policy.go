package actors

import "time"

// Reason says why a batch was flushed; it is the "reason" label of the
// flush metric.
type Reason string

// The flush reasons.
const (
	ReasonNone     Reason = ""
	ReasonCount    Reason = "max_events"
	ReasonBytes    Reason = "max_bytes"
	ReasonIdle     Reason = "idle"
	ReasonAge      Reason = "max_age"
	ReasonShutdown Reason = "shutdown"
)

// Policy decides when a batch is flushed. It is plain code with no goroutine
// and no timer: the buffer actor feeds it events and asks it when the next
// deadline falls, so every trigger can be tested with a fake clock.
type Policy struct {
	MaxEvents int           // flush when the batch holds this many events
	MaxBytes  int           // flush when the batch holds this many bytes
	Idle      time.Duration // flush when no event arrived for this long
	MaxAge    time.Duration // flush when the oldest event is this old

	// Now is the clock; time.Now when nil.
	Now func() time.Time

	count, bytes int
	first, last  time.Time
}

func (p *Policy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Add records one event of the given size and says whether the batch must be
// flushed now because it is full.
func (p *Policy) Add(size int) Reason {
	now := p.now()
	if p.count == 0 {
		p.first = now
	}
	p.last = now
	p.count++
	p.bytes += size
	switch {
	case p.MaxEvents > 0 && p.count >= p.MaxEvents:
		return ReasonCount
	case p.MaxBytes > 0 && p.bytes >= p.MaxBytes:
		return ReasonBytes
	}
	return ReasonNone
}

// Bytes is the sum of the sizes added to the batch.
func (p *Policy) Bytes() int { return p.bytes }

// Empty says whether the batch holds no event.
func (p *Policy) Empty() bool { return p.count == 0 }

// Deadline is when the batch is due by time: the earlier of idle time after
// the last event and max age after the first. It is meaningless when Empty.
func (p *Policy) Deadline() time.Time {
	idle := p.last.Add(p.Idle)
	age := p.first.Add(p.MaxAge)
	if p.MaxAge > 0 && age.Before(idle) {
		return age
	}
	return idle
}

// Due says whether the batch must be flushed now by time, and why; when it
// need not, wait says how long until it may.
func (p *Policy) Due() (r Reason, wait time.Duration) {
	if p.count == 0 {
		return ReasonNone, p.Idle
	}
	now := p.now()
	if p.MaxAge > 0 && !now.Before(p.first.Add(p.MaxAge)) {
		return ReasonAge, 0
	}
	if !now.Before(p.last.Add(p.Idle)) {
		return ReasonIdle, 0
	}
	return ReasonNone, p.Deadline().Sub(now)
}

// Reset starts a new, empty batch.
func (p *Policy) Reset() {
	p.count, p.bytes = 0, 0
	p.first, p.last = time.Time{}, time.Time{}
}
