package actors

import (
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestPolicy(c *fakeClock) *Policy {
	return &Policy{MaxEvents: 3, MaxBytes: 1000, Idle: 100 * time.Millisecond, MaxAge: time.Second, Now: c.now}
}

func TestPolicy(t *testing.T) {
	tests := []struct {
		name string
		run  func(p *Policy, c *fakeClock) Reason
		want Reason
	}{
		{"count reached on the third event", func(p *Policy, c *fakeClock) Reason {
			p.Add(10)
			p.Add(10)
			return p.Add(10)
		}, ReasonCount},
		{"bytes reached before count", func(p *Policy, c *fakeClock) Reason {
			p.Add(600)
			return p.Add(400)
		}, ReasonBytes},
		{"not due before idle", func(p *Policy, c *fakeClock) Reason {
			p.Add(10)
			c.advance(99 * time.Millisecond)
			r, _ := p.Due()
			return r
		}, ReasonNone},
		{"idle after quiet time", func(p *Policy, c *fakeClock) Reason {
			p.Add(10)
			c.advance(100 * time.Millisecond)
			r, _ := p.Due()
			return r
		}, ReasonIdle},
		{"a never-idle stream flushes at max age", func(p *Policy, c *fakeClock) Reason {
			p.MaxEvents = 1 << 30
			p.MaxBytes = 1 << 30
			for i := 0; i < 20; i++ { // an event every 60ms for 1.2s
				p.Add(10)
				c.advance(60 * time.Millisecond)
				if r, _ := p.Due(); r != ReasonNone {
					return r
				}
			}
			return ReasonNone
		}, ReasonAge},
		{"empty batch is never due", func(p *Policy, c *fakeClock) Reason {
			c.advance(time.Hour)
			r, _ := p.Due()
			return r
		}, ReasonNone},
		{"reset starts a new batch", func(p *Policy, c *fakeClock) Reason {
			p.Add(10)
			p.Add(10)
			p.Reset()
			p.Add(10)
			return p.Add(10)
		}, ReasonNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			if got := tt.run(newTestPolicy(c), c); got != tt.want {
				t.Errorf("got reason %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPolicyWaitIsTimeToEarliestDeadline(t *testing.T) {
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := newTestPolicy(c)
	p.Add(1)
	c.advance(30 * time.Millisecond)
	if r, wait := p.Due(); r != ReasonNone || wait != 70*time.Millisecond {
		t.Fatalf("Due() = %q, %v; want idle wait of 70ms", r, wait)
	}
	// Near max age, the age deadline comes before the idle one.
	for i := 0; i < 19; i++ {
		c.advance(50 * time.Millisecond)
		p.Add(1)
	}
	// first at 0, now at 980ms: age due in 20ms, idle in 100ms
	if r, wait := p.Due(); r != ReasonNone || wait != 20*time.Millisecond {
		t.Fatalf("Due() = %q, %v; want age wait of 20ms", r, wait)
	}
}

func BenchmarkPolicyAdd(b *testing.B) {
	p := &Policy{MaxEvents: 1000, MaxBytes: 4 << 20, Idle: 200 * time.Millisecond, MaxAge: time.Second}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if p.Add(200) != ReasonNone {
			p.Reset()
		}
	}
}
