package event

import (
	"encoding/json"
	"time"
)

// MaxIDLength is the longest id accepted, in bytes.
const MaxIDLength = 255

// MaxFieldLength is the longest type, source or subject accepted, in bytes:
// they are indexed (PostgreSQL's btree entries must stay well under 2.7 kB)
// and Elasticsearch keeps them as keywords up to 1,024 bytes.
const MaxFieldLength = 1024

// Event is one stored event. Its JSON form is the envelope that the file sink
// and the fallback log write and that replay reads back.
type Event struct {
	// ID is unique; it is the idempotency key in every store.
	ID string `json:"id"`
	// Type says what happened, e.g. "order.created". Required.
	Type string `json:"type"`
	// Source names the producer.
	Source string `json:"source"`
	// Subject is optional.
	Subject string `json:"subject,omitempty"`
	// Time is when it happened; it defaults to ReceivedAt.
	Time time.Time `json:"time"`
	// ReceivedAt is when the engine accepted the event.
	ReceivedAt time.Time `json:"received_at"`
	// Data is any JSON value, kept as the producer sent it; nil when absent.
	Data json.RawMessage `json:"data,omitempty"`
}

// overhead approximates the bytes an event costs beyond its variable fields:
// the envelope's keys, two timestamps and the slice header.
const overhead = 96

// Size approximates the event's size in bytes, for the buffer's byte trigger
// and the pending-bytes limit. It is cheap and need not be exact.
func (e *Event) Size() int {
	return overhead + len(e.ID) + len(e.Type) + len(e.Source) + len(e.Subject) + len(e.Data)
}

// Batch is a group of events flushed together. ID names the batch in logs and
// in the fallback log.
type Batch struct {
	ID string
	// First is the write-ahead log offset of Events[0]; the events of a
	// batch have consecutive offsets.
	First  uint64
	Events []Event
	// Bytes is the sum of the events' Size, counted once as they arrived.
	Bytes int64
}
