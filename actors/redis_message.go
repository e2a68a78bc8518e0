package actors

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"eventlistener/event"
)

// envelopeKeys are the fields an event envelope may have. A JSON object
// whose keys are all among them (with a string "type") is taken as an event;
// any other object is data.
var envelopeKeys = map[string]bool{
	"id": true, "type": true, "source": true, "subject": true, "time": true, "data": true,
	"data_base64": true, "specversion": true, "datacontenttype": true, "dataschema": true,
}

// messageEnvelope is the event form of a message.
type messageEnvelope struct {
	ID          *string         `json:"id"`
	Type        *string         `json:"type"`
	Source      *string         `json:"source"`
	Subject     *string         `json:"subject"`
	Time        *string         `json:"time"`
	Data        json.RawMessage `json:"data"`
	DataBase64  *string         `json:"data_base64"`
	SpecVersion *string         `json:"specversion"`
}

// messageToEvent turns a Redis message into an event:
//   - a JSON event or CloudEvent (an object with "specversion", or with a
//     string "type" and only envelope fields) is taken as it is;
//   - any other JSON value becomes data, with type defaultType;
//   - anything else becomes a JSON string of the text (of its base64 when it
//     is not UTF-8 text), with type defaultType.
//
// source is redis://CHANNEL unless the event has its own. An event that
// breaks the envelope's rules is an error.
func messageToEvent(channel string, payload []byte, defaultType string, now time.Time) (event.Event, error) {
	ev := event.Event{Source: "redis://" + channel, Type: defaultType, Time: now, ReceivedAt: now}
	trimmed := bytes.TrimSpace(payload)
	switch {
	case len(trimmed) > 0 && json.Valid(trimmed):
		if isEnvelope(trimmed) {
			if err := fillEnvelope(&ev, trimmed); err != nil {
				return ev, err
			}
		} else {
			ev.Data = json.RawMessage(append([]byte(nil), trimmed...))
		}
	case utf8.Valid(payload):
		ev.Data, _ = json.Marshal(string(payload))
	default:
		ev.Data, _ = json.Marshal(base64.StdEncoding.EncodeToString(payload))
	}
	if ev.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return ev, err
		}
		ev.ID = id.String()
	}
	return ev, nil
}

func isEnvelope(obj []byte) bool {
	if obj[0] != '{' {
		return false
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(obj, &fields) != nil {
		return false
	}
	if _, ok := fields["specversion"]; ok {
		return true
	}
	var typ string
	if json.Unmarshal(fields["type"], &typ) != nil {
		return false
	}
	for k := range fields {
		if !envelopeKeys[k] {
			return false
		}
	}
	return true
}

func fillEnvelope(ev *event.Event, obj []byte) error {
	var m messageEnvelope
	if err := json.Unmarshal(obj, &m); err != nil {
		return fmt.Errorf("not an event: %w", err)
	}
	if m.SpecVersion != nil && *m.SpecVersion != "1.0" {
		return fmt.Errorf(`"specversion" must be "1.0", got %q`, *m.SpecVersion)
	}
	if m.Type == nil || *m.Type == "" {
		return errors.New(`"type" is required`)
	}
	ev.Type = *m.Type
	if m.ID != nil {
		if *m.ID == "" || len(*m.ID) > event.MaxIDLength {
			return fmt.Errorf(`"id" must be 1 to %d bytes`, event.MaxIDLength)
		}
		ev.ID = *m.ID
	}
	if m.Source != nil && *m.Source != "" {
		ev.Source = *m.Source
	}
	if m.Subject != nil {
		ev.Subject = *m.Subject
	}
	for name, v := range map[string]string{"type": ev.Type, "source": ev.Source, "subject": ev.Subject} {
		if len(v) > event.MaxFieldLength {
			return fmt.Errorf("%q must be at most %d bytes", name, event.MaxFieldLength)
		}
	}
	if m.Time != nil {
		t, err := time.Parse(time.RFC3339Nano, *m.Time)
		if err != nil {
			return fmt.Errorf(`"time" must be an RFC 3339 timestamp, got %q`, *m.Time)
		}
		ev.Time = t
	}
	switch {
	case m.DataBase64 != nil && m.Data != nil:
		return errors.New(`"data" and "data_base64" are mutually exclusive`)
	case m.DataBase64 != nil:
		if _, err := base64.StdEncoding.DecodeString(*m.DataBase64); err != nil {
			return errors.New(`"data_base64" is not valid base64`)
		}
		ev.Data, _ = json.Marshal(*m.DataBase64)
	case m.Data != nil && string(m.Data) != "null":
		ev.Data = m.Data
	}
	return nil
}
