package sources

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// payloadEvent turns a message (a pub/sub payload, or a stream entry's
// one field) into an event, with the envelope decoder every source uses
// (so it gets the verdict the same event gets over HTTP):
//   - a JSON event or CloudEvent (an object with "specversion", or with a
//     string "type" and only envelope fields) is decoded as one;
//   - any other JSON value becomes data, with type defaultType;
//   - anything else becomes a JSON string of the text (of its base64 when it
//     is not UTF-8 text or holds a NUL), with type defaultType.
//
// source is the event's source unless it has its own; id its id unless it
// has its own (empty: a new UUIDv7). An event, or data, that breaks the
// input contract is an error.
func payloadEvent(source, id string, payload []byte, defaultType string, maxEventBytes int, now time.Time) (event.Event, error) {
	ev := event.Event{Source: source, Type: defaultType, Time: now, ReceivedAt: now}
	dec := event.NewDecoder(event.DecodeOptions{Now: now, DefaultSource: ev.Source, MaxEventBytes: maxEventBytes})
	defer dec.Release()
	trimmed := bytes.TrimSpace(payload)
	if env, hasID := isEnvelope(trimmed); env {
		if err := dec.Document(trimmed, event.ShapeObject); err != nil {
			return ev, err
		}
		out := dec.Events()[0]
		if !hasID && id != "" {
			out.ID = id
		}
		return out, nil
	}
	data, err := dec.Data(trimmed, "the message")
	var de *event.DecodeError
	switch {
	case len(trimmed) == 0 || errors.As(err, &de) && de.Syntax:
		// Not JSON: the text itself.
		if utf8.Valid(payload) && bytes.IndexByte(payload, 0) < 0 {
			ev.Data = event.AppendJSONString(nil, payload)
		} else {
			ev.Data = event.AppendJSONString(nil, base64.StdEncoding.AppendEncode(nil, payload))
		}
		if maxEventBytes > 0 && len(ev.Data) > maxEventBytes {
			return ev, fmt.Errorf("the message becomes data of %d bytes; at most %d are stored per event (--max-event-bytes)", len(ev.Data), maxEventBytes)
		}
	case err != nil:
		return ev, err
	default:
		ev.Data = data
	}
	if id == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return ev, err
		}
		id = u.String()
	}
	ev.ID = id
	return ev, nil
}

// isEnvelope says whether obj is an object an event is made of, and
// whether it has an id.
func isEnvelope(obj []byte) (env, hasID bool) {
	if len(obj) == 0 || obj[0] != '{' {
		return false, false
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(obj, &fields) != nil {
		return false, false
	}
	_, hasID = fields["id"]
	if _, ok := fields["specversion"]; ok {
		return true, hasID
	}
	var typ string
	if json.Unmarshal(fields["type"], &typ) != nil {
		return false, false
	}
	for k := range fields {
		if !envelopeKeys[k] {
			return false, false
		}
	}
	return true, hasID
}

// entryEvent turns a stream entry into an event, by the rules of
// payloadEvent: an entry whose one field holds a JSON event or CloudEvent
// is that event; any other entry's fields become its data, a JSON object
// of strings (the base64 of a value that is not UTF-8 text or holds a
// NUL), with type defaultType and the entry's id as subject. An event
// without an id of its own gets id.
func entryEvent(source, id, entryID string, values map[string]any, defaultType string, maxEventBytes int, now time.Time) (event.Event, error) {
	if len(values) == 1 {
		for _, v := range values {
			if s, ok := v.(string); ok {
				if env, _ := isEnvelope(bytes.TrimSpace([]byte(s))); env {
					return payloadEvent(source, id, []byte(s), defaultType, maxEventBytes, now)
				}
			}
		}
	}
	ev := event.Event{ID: id, Type: defaultType, Source: source, Subject: entryID, Time: now, ReceivedAt: now}
	if len(values) == 0 {
		return ev, errors.New("the entry has no fields")
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		if !utf8.ValidString(k) || strings.IndexByte(k, 0) >= 0 {
			return ev, fmt.Errorf("field name %q is not UTF-8 text", k)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	obj := []byte{'{'}
	for i, k := range keys {
		if i > 0 {
			obj = append(obj, ',')
		}
		obj = event.AppendJSONString(obj, []byte(k))
		obj = append(obj, ':')
		v := fmt.Sprint(values[k])
		if utf8.ValidString(v) && strings.IndexByte(v, 0) < 0 {
			obj = event.AppendJSONString(obj, []byte(v))
		} else {
			obj = event.AppendJSONString(obj, base64.StdEncoding.AppendEncode(nil, []byte(v)))
		}
	}
	obj = append(obj, '}')
	dec := event.NewDecoder(event.DecodeOptions{Now: now, DefaultSource: source, MaxEventBytes: maxEventBytes})
	defer dec.Release()
	data, err := dec.Data(obj, "the entry's fields")
	if err != nil {
		return ev, err
	}
	ev.Data = data
	return ev, nil
}
