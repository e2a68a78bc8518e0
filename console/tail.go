package console

import (
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"eventlistener/event"
)

// TailEvent is an ingested event as the live tail shows it: its data is
// cut to PreviewBytes.
type TailEvent struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Source     string          `json:"source"`
	Subject    string          `json:"subject,omitempty"`
	Time       time.Time       `json:"time"`
	ReceivedAt time.Time       `json:"received_at"`
	Data       json.RawMessage `json:"data,omitempty"`    // when whole
	Preview    string          `json:"preview,omitempty"` // the start of data, when cut
	Bytes      int             `json:"data_bytes"`
}

// PreviewBytes is the most data the tail shows of one event.
const PreviewBytes = 2048

func tailEvent(e *event.Event) TailEvent {
	t := TailEvent{ID: e.ID, Type: e.Type, Source: e.Source, Subject: e.Subject, Time: e.Time, ReceivedAt: e.ReceivedAt, Bytes: len(e.Data)}
	if len(e.Data) <= PreviewBytes {
		t.Data = append(json.RawMessage(nil), e.Data...)
		return t
	}
	cut := PreviewBytes
	for cut > 0 && !utf8.RuneStart(e.Data[cut]) {
		cut--
	}
	t.Preview = string(e.Data[:cut])
	return t
}

// Filter picks the events a tail shows: empty fields match all, a value
// ending in * matches by prefix, any other exactly.
type Filter struct {
	Type   string
	Source string
}

func (f Filter) match(e *event.Event) bool {
	return matches(f.Type, e.Type) && matches(f.Source, e.Source)
}

func matches(pattern, s string) bool {
	if pattern == "" {
		return true
	}
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(s, p)
	}
	return pattern == s
}

// Tail samples the events the engine takes, for the console's live tail.
// Each tail stream gets the events its filter matches, at most Rate a
// second; what it skips it counts, so the page can say it samples. With no
// stream open it keeps only a few recent events, one per request at most.
type Tail struct {
	rate       rate.Limit
	recentGap  int64        // nanoseconds between two recent events kept
	recentLast atomic.Int64 // when the last was kept (Unix ns)

	subsN atomic.Int32
	mu    sync.RWMutex // Offer reads subs; subscribe and unsubscribe change it
	subs  map[*tailSub]struct{}

	recentMu sync.Mutex
	recent   []TailEvent // a ring of the last recentSize kept
	next     int
}

// recentSize is how many recent events a new tail stream starts with.
const recentSize = 50

// NewTail samples at most perSecond events a second for each stream.
func NewTail(perSecond float64) *Tail {
	return &Tail{rate: rate.Limit(perSecond), recentGap: int64(float64(time.Second) / perSecond), subs: map[*tailSub]struct{}{}}
}

type tailSub struct {
	filter  Filter
	lim     *rate.Limiter
	ch      chan TailEvent
	matched atomic.Int64 // events the filter matched
	shown   atomic.Int64 // of them sent
}

// Offer is the engine's OnIngest: it must not block. With no tail open it
// costs a clock read and an atomic load (and, a few times a second, the
// copy of one event for the recent ring); concurrent requests do not wait
// for each other.
func (t *Tail) Offer(events []event.Event) {
	if len(events) == 0 {
		return
	}
	now := time.Now().UnixNano()
	if last := t.recentLast.Load(); now-last >= t.recentGap && t.recentLast.CompareAndSwap(last, now) {
		e := tailEvent(&events[0])
		t.recentMu.Lock()
		if len(t.recent) < recentSize {
			t.recent = append(t.recent, e)
		} else {
			t.recent[t.next] = e
		}
		t.next = (t.next + 1) % recentSize
		t.recentMu.Unlock()
	}
	if t.subsN.Load() == 0 {
		return
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	for s := range t.subs {
		open := true
		for i := range events {
			if !s.filter.match(&events[i]) {
				continue
			}
			s.matched.Add(1)
			if !open || !s.lim.Allow() {
				open = false // the rest of this request is skipped
				continue
			}
			select {
			case s.ch <- tailEvent(&events[i]):
				s.shown.Add(1)
			default: // the stream is behind: skip
				open = false
			}
		}
	}
}

// subscribe opens a stream of the events f matches, starting with the
// recent ones it matches.
func (t *Tail) subscribe(f Filter) (*tailSub, []TailEvent) {
	s := &tailSub{filter: f, lim: rate.NewLimiter(t.rate, max(1, int(t.rate))), ch: make(chan TailEvent, max(16, 2*int(t.rate)))}
	t.mu.Lock()
	t.subs[s] = struct{}{}
	t.subsN.Add(1)
	t.mu.Unlock()
	t.recentMu.Lock()
	defer t.recentMu.Unlock()
	var out []TailEvent
	for i := range t.recent {
		e := t.recent[(t.next+i)%len(t.recent)]
		if len(t.recent) < recentSize {
			e = t.recent[i]
		}
		ev := event.Event{Type: e.Type, Source: e.Source}
		if f.match(&ev) {
			out = append(out, e)
		}
	}
	return s, out
}

func (t *Tail) unsubscribe(s *tailSub) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.subs[s]; ok {
		delete(t.subs, s)
		t.subsN.Add(-1)
	}
}
