package event

// The envelope decoder: one set of rules for every source of events (HTTP
// bodies, Redis messages, fallback records), so the same event gets the
// same verdict wherever it comes from.
//
// It is the hot path of ingestion, so it does not use encoding/json: a small
// hand-written scanner walks the input once, validates it as JSON (RFC 8259,
// UTF-8 only) and picks out the envelope fields. Decoded strings of all events
// go into one scratch arena and data values into another; when the whole
// input is valid the arenas are copied once into a single string and a
// single byte slice that the events share, so a request of 1,000 events costs
// a handful of allocations. An event never points into memory that the
// decoder reuses, and it never keeps more of the input alive than its own
// fields.

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/google/uuid"
)

// MaxDataDepth is how deeply a data value (or an extension attribute) may
// nest. Elasticsearch's JSON parser refuses documents nested more than 1,000
// levels and PostgreSQL recurses per level, so 512 leaves room for the
// envelope around the data everywhere the event goes.
const MaxDataDepth = 512

// MaxObjectDepth is how deeply objects may nest in data, the depth_limit of
// Elasticsearch's flattened field (its default, which the template states). A
// data value that is not an object is stored inside one, which counts.
const MaxObjectDepth = 20

// MaxKeyBytes is the longest key in data. Elasticsearch indexes each leaf of
// the flattened field as one term of its dotted key and its value, and a term
// over 32,766 bytes refuses the document: 20 keys of 1,000 bytes and a value
// of the template's ignore_above (4,096 characters, at most 12,288 bytes;
// longer ones are kept unindexed) always fit.
const MaxKeyBytes = 1000

// MaxExponent bounds the exponent of a number in data as written: past every
// float64's, and far within what PostgreSQL's numeric holds.
const MaxExponent = 400

// MaxNumberLength is the longest number accepted in data: ample for any
// float64 or 64-bit integer, and within what JSON parsers take (Jackson,
// which Elasticsearch uses, refuses numbers over 1,000 characters).
const MaxNumberLength = 100

// Shape is what a document holds.
type Shape uint8

const (
	// ShapeJSON is one event object or an array of them (plain JSON).
	ShapeJSON Shape = iota + 1
	// ShapeObject is one plain event object (a Redis message).
	ShapeObject
	// ShapeStructured is one CloudEvent object: specversion, id, source
	// and type are required.
	ShapeStructured
	// ShapeBatch is an array of CloudEvent objects.
	ShapeBatch
	// ShapeStored is one event as the file sink and the fallback log write
	// it: received_at is read too.
	ShapeStored
)

// DecodeOptions says how a Decoder makes events.
type DecodeOptions struct {
	// Now becomes ReceivedAt of every event (but a stored one's), and
	// Time of an event that has none. The zero value means time.Now().
	Now time.Time
	// DefaultSource is the Source of an event that has none or an empty
	// one. CloudEvents must carry their own source.
	DefaultSource string
	// MaxEvents is the most events the decoder takes (TooLarge beyond);
	// zero or less means no limit.
	MaxEvents int
	// MaxEventBytes is the largest data one event may store (TooLarge
	// beyond); zero or less means no limit.
	MaxEventBytes int
	// Reserve, when set, is asked before the decoder takes memory for
	// ReserveStep more events (ReserveStep*EventCost bytes); false refuses
	// the input as Busy.
	Reserve func(n int64) bool
}

// DecodeError is input the decoder refuses.
type DecodeError struct {
	// Index is the position of the bad event (counting events, not
	// lines), or -1 when the error is not about one event.
	Index int
	// Message says what is wrong and where.
	Message string
	// Syntax says the input is not JSON at all; else it is JSON that is
	// not a valid event, or (TooLarge) one over a size limit.
	Syntax bool
	// TooLarge: over MaxEvents or MaxEventBytes.
	TooLarge bool
	// Busy: Reserve refused.
	Busy bool
}

func (e *DecodeError) Error() string { return e.Message }

// ErrBusy is the error of an input that Reserve refused.
var ErrBusy = &DecodeError{Index: -1, Busy: true, Message: "no memory could be reserved for more events"}

// EventCost is what one decoded event takes in memory besides its strings
// and data: its parsed fields and its Event (each in a slice that may have
// doubled), and a generated id.
var EventCost = int64(2*(unsafe.Sizeof(rawEvent{})+unsafe.Sizeof(Event{})) + 36)

// ReserveStep is how many events the decoder reserves memory for at a time.
const ReserveStep = 1024

// Decoder decodes events. It is not safe for concurrent use; get one with
// NewDecoder and give it back with Release.
type Decoder struct {
	in  []byte // what the scanner reads: a document, or one NDJSON line
	pos int    // the scanner's position in in

	str    []byte     // decoded strings of all events (and generated ids)
	data   []byte     // data values of all events
	key    []byte     // the field name being matched
	tmp    []byte     // a field value that is checked, not kept
	events []rawEvent // fields of each event, as spans of str and data
	kbuf   []byte     // decoded keys of the data objects being read
	dkeys  []span     // those keys, as spans of kbuf, innermost object last

	stored bool // reading ShapeStored
	opt    DecodeOptions
}

var decoderPool = sync.Pool{New: func() any { return new(Decoder) }}

// NewDecoder returns a decoder, from a pool.
func NewDecoder(opt DecodeOptions) *Decoder {
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	d := decoderPool.Get().(*Decoder)
	d.opt = opt
	return d
}

// maxPooledBytes bounds each buffer kept in the pool, so that one huge input
// does not pin its buffers for the life of the process.
const maxPooledBytes = 4 << 20

// Release gives the decoder back to the pool. Events already returned stay
// valid: they share no memory with it.
func (d *Decoder) Release() {
	d.str = keepSmall(d.str)
	d.data = keepSmall(d.data)
	d.key = keepSmall(d.key)
	d.tmp = keepSmall(d.tmp)
	d.kbuf = keepSmall(d.kbuf)
	if cap(d.dkeys) > 1<<16 {
		d.dkeys = nil
	}
	d.dkeys = d.dkeys[:0]
	if cap(d.events) > 1<<16 {
		d.events = nil
	}
	d.events = d.events[:0]
	d.in, d.pos = nil, 0
	d.opt = DecodeOptions{}
	decoderPool.Put(d)
}

func keepSmall(b []byte) []byte {
	if cap(b) > maxPooledBytes {
		return nil
	}
	return b[:0]
}

// tooMany refuses event i when it is one more than allowed, and reserves
// memory for events as they come.
func (d *Decoder) tooMany(i int) error {
	if d.opt.MaxEvents <= 0 || i < d.opt.MaxEvents {
		if i%ReserveStep == 0 && d.opt.Reserve != nil && !d.opt.Reserve(ReserveStep*EventCost) {
			return ErrBusy
		}
		return nil
	}
	return &DecodeError{Index: i, TooLarge: true,
		Message: fmt.Sprintf("more than %d events in one request: split it into smaller ones", d.opt.MaxEvents)}
}

// Data checks value, the whole of it one JSON value, against the rules of
// stored data (see Decode's rules) and returns a copy of it; nil when it is
// empty or null. name is what it is called in messages. The error is a
// *DecodeError with Index 0 (Syntax when value is not JSON).
func (d *Decoder) Data(value []byte, name string) (json.RawMessage, error) {
	d.in, d.pos = bytes.TrimPrefix(value, utf8BOM), 0
	d.skipWS()
	if d.pos == len(d.in) {
		return nil, nil
	}
	start := d.pos
	err := d.dataValue(name)
	if err == nil {
		d.skipWS()
		if d.pos != len(d.in) {
			err = &syntaxError{off: d.pos, msg: "unexpected data after the JSON value"}
		}
	}
	if err != nil {
		return nil, d.valueError(0, "", false, err)
	}
	end := len(bytes.TrimRight(d.in, jsonSpace))
	if v := d.in[start:end]; string(v) != "null" {
		return exactCopy(v), nil
	}
	return nil, nil
}

const jsonSpace = " \t\r\n"

// exactCopy copies b into a slice without spare capacity (bytes.Clone may
// round up), so that appending to it never writes into shared memory.
func exactCopy(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}

// ---------------------------------------------------------------------------
// Documents: JSON, NDJSON, structured and batched CloudEvents

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Document decodes body, of the given shape, and keeps its events for
// Events. All or nothing: on an error no event of body is kept.
func (d *Decoder) Document(body []byte, f Shape) error {
	n := len(d.events)
	if err := d.document(body, f); err != nil {
		d.events = d.events[:n]
		return err
	}
	return nil
}

func (d *Decoder) document(body []byte, f Shape) error {
	ce := f == ShapeStructured || f == ShapeBatch
	d.stored = f == ShapeStored
	d.in, d.pos = bytes.TrimPrefix(body, utf8BOM), 0
	d.skipWS()
	if d.pos == len(d.in) {
		return invalid(-1, "request body is empty; expected "+f.describe())
	}
	single := f != ShapeJSON && f != ShapeBatch
	switch c := d.in[d.pos]; {
	case c == '{' && f != ShapeBatch:
		if err := d.parseEvent(ce); err != nil {
			return d.eventError(0, 0, err)
		}
	case c == '[' && !single:
		if err := d.parseArray(ce); err != nil {
			return err
		}
	case valueKind(c) != "":
		return invalid(-1, fmt.Sprintf("request body must be %s, got %s", f.describe(), valueKind(c)))
	default:
		return d.syntaxRequestError(-1, d.pos, unexpectedByte(c))
	}
	d.skipWS()
	if d.pos != len(d.in) {
		return d.syntaxRequestError(-1, d.pos, "unexpected data after the top-level value")
	}
	return nil
}

func (f Shape) describe() string {
	switch f {
	case ShapeStructured:
		return "one JSON object (for an array, use application/cloudevents-batch+json)"
	case ShapeBatch:
		return "a JSON array of CloudEvents objects"
	case ShapeObject, ShapeStored:
		return "a JSON object"
	default:
		return "a JSON object or an array of objects"
	}
}

func (d *Decoder) parseArray(ce bool) error {
	d.pos++ // '['
	d.skipWS()
	if d.pos < len(d.in) && d.in[d.pos] == ']' {
		d.pos++
		return nil
	}
	for i := 0; ; i++ {
		if d.pos == len(d.in) {
			return d.syntaxRequestError(-1, d.pos, "unexpected end of input")
		}
		switch c := d.in[d.pos]; {
		case c == '{':
		case valueKind(c) != "":
			return invalid(i, fmt.Sprintf("event %d: must be a JSON object, got %s", i, valueKind(c)))
		default:
			return d.syntaxRequestError(-1, d.pos, unexpectedByte(c))
		}
		if rerr := d.tooMany(i); rerr != nil {
			return rerr
		}
		if err := d.parseEvent(ce); err != nil {
			return d.eventError(i, 0, err)
		}
		d.skipWS()
		if d.pos == len(d.in) {
			return d.syntaxRequestError(-1, d.pos, "unexpected end of input")
		}
		switch d.in[d.pos] {
		case ',':
			d.pos++
			d.skipWS()
		case ']':
			d.pos++
			return nil
		default:
			return d.syntaxRequestError(-1, d.pos, fmt.Sprintf("%s after event %d; expected ',' or ']'", unexpectedByte(d.in[d.pos]), i))
		}
	}
}

// NDJSON decodes body, one event object per line (blank lines skipped),
// and keeps its events for Events. All or nothing, as Document.
func (d *Decoder) NDJSON(body []byte) error {
	n := len(d.events)
	if err := d.ndjson(body); err != nil {
		d.events = d.events[:n]
		return err
	}
	return nil
}

func (d *Decoder) ndjson(body []byte) error {
	d.stored = false
	rest := bytes.TrimPrefix(body, utf8BOM)
	idx := 0
	for line := 1; len(rest) > 0; line++ {
		var ln []byte
		if nl := bytes.IndexByte(rest, '\n'); nl >= 0 {
			ln, rest = rest[:nl], rest[nl+1:]
		} else {
			ln, rest = rest, nil
		}
		d.in, d.pos = ln, 0
		d.skipWS() // blanks, including a '\r' before the '\n'
		if d.pos == len(ln) {
			continue
		}
		switch c := ln[d.pos]; {
		case c == '{':
		case valueKind(c) != "":
			return invalid(idx, fmt.Sprintf("event %d (line %d): each line must be a JSON object, got %s", idx, line, valueKind(c)))
		default:
			return d.eventError(idx, line, &syntaxError{off: d.pos, msg: unexpectedByte(c)})
		}
		if rerr := d.tooMany(idx); rerr != nil {
			return rerr
		}
		if err := d.parseEvent(false); err != nil {
			return d.eventError(idx, line, err)
		}
		d.skipWS()
		if d.pos != len(ln) {
			return d.eventError(idx, line, &syntaxError{off: d.pos, msg: "unexpected data after the event; NDJSON has one object per line"})
		}
		idx++
	}
	return nil
}

// ---------------------------------------------------------------------------
// One event object

// span is a part of decodeState.str or decodeState.data.
type span struct{ off, end int }

// rawEvent is an event whose strings are still spans of the scratch arenas.
type rawEvent struct {
	id, typ, source, subject, data span
	time, receivedAt               time.Time
	present                        fieldSet // fields with a non-null value
}

type fieldSet uint16

const (
	fieldID fieldSet = 1 << iota
	fieldType
	fieldSource
	fieldSubject
	fieldTime
	fieldData
	fieldDataBase64
	fieldSpecversion
	fieldReceivedAt // only in ShapeStored
)

func lookupField(name []byte) fieldSet {
	switch string(name) { // no allocation: the compiler compares in place
	case "id":
		return fieldID
	case "type":
		return fieldType
	case "source":
		return fieldSource
	case "subject":
		return fieldSubject
	case "time":
		return fieldTime
	case "data":
		return fieldData
	case "data_base64":
		return fieldDataBase64
	case "specversion":
		return fieldSpecversion
	}
	return 0
}

// fieldError is an event that is valid JSON but not a valid event.
type fieldError struct {
	msg      string
	tooLarge bool // over a size limit, not malformed
}

func (e *fieldError) Error() string { return e.msg }

func fieldErrorf(format string, args ...any) error {
	return &fieldError{msg: fmt.Sprintf(format, args...)}
}

// parseEvent reads the object at d.pos (a '{') and appends it to d.events.
// ce requires the CloudEvents attributes.
func (d *Decoder) parseEvent(ce bool) error {
	var r rawEvent
	var seen fieldSet
	d.pos++ // '{'
	d.skipWS()
	if d.pos < len(d.in) && d.in[d.pos] == '}' {
		d.pos++
	} else {
		for {
			if d.pos == len(d.in) {
				return d.eof()
			}
			if d.in[d.pos] != '"' {
				return &syntaxError{off: d.pos, msg: unexpectedByte(d.in[d.pos]) + "; expected a field name in double quotes"}
			}
			key, err := d.scanKey()
			if err != nil {
				return err
			}
			if err := d.colon(); err != nil {
				return err
			}
			if d.pos == len(d.in) {
				return d.eof()
			}
			f := lookupField(key)
			if f == 0 && d.stored && string(key) == "received_at" {
				f = fieldReceivedAt
			}
			if f != 0 {
				if seen&f != 0 {
					return fieldErrorf("%q is given twice", key)
				}
				seen |= f
			}
			if err := d.parseField(&r, f); err != nil {
				return err
			}
			d.skipWS()
			if d.pos == len(d.in) {
				return d.eof()
			}
			if c := d.in[d.pos]; c == ',' {
				d.pos++
				d.skipWS()
			} else if c == '}' {
				d.pos++
				break
			} else {
				return &syntaxError{off: d.pos, msg: unexpectedByte(c) + " after a field value; expected ',' or '}'"}
			}
		}
	}
	if err := d.checkEvent(&r, ce); err != nil {
		return err
	}
	d.events = append(d.events, r)
	return nil
}

// scanKey reads a field name. Without escapes (the usual case) it is a part
// of the input, else it is decoded into d.key; either way only valid until
// the next field.
func (d *Decoder) scanKey() ([]byte, error) {
	in := d.in
	i := d.pos + 1
	for i < len(in) && plainStringByte[in[i]] {
		i++
	}
	if i < len(in) && in[i] == '"' {
		key := in[d.pos+1 : i]
		d.pos = i + 1
		return key, nil
	}
	var err error
	d.key, err = d.scanString(d.key[:0], true)
	return d.key, err
}

// parseField reads the value of field f (0: one to skip) into r.
func (d *Decoder) parseField(r *rawEvent, f fieldSet) error {
	var err error
	var ok bool
	switch f {
	case fieldID:
		r.id, ok, err = d.stringField("id")
	case fieldType:
		r.typ, ok, err = d.stringField("type")
	case fieldSource:
		r.source, ok, err = d.stringField("source")
	case fieldSubject:
		r.subject, ok, err = d.stringField("subject")
	case fieldTime:
		r.time, ok, err = d.timeField("time")
	case fieldReceivedAt:
		r.receivedAt, ok, err = d.timeField("received_at")
	case fieldSpecversion:
		ok, err = d.specversionField()
	case fieldData:
		start := d.pos
		null := d.in[d.pos] == 'n'
		if err = d.dataValue(`"data"`); err == nil && !null {
			off := len(d.data)
			d.data = append(d.data, d.in[start:d.pos]...)
			r.data, ok = span{off, len(d.data)}, true
		}
	case fieldDataBase64:
		r.data, ok, err = d.base64Field()
	default:
		err = d.skipValue(0, "")
	}
	if ok {
		r.present |= f
	}
	return err
}

// stringField reads a string (into d.str) or null (absent).
func (d *Decoder) stringField(name string) (sp span, ok bool, err error) {
	switch c := d.in[d.pos]; c {
	case '"':
		off := len(d.str)
		if d.str, err = d.scanString(d.str, true); err != nil {
			return span{}, false, err
		}
		return span{off, len(d.str)}, true, nil
	case 'n':
		return span{}, false, d.literal("null")
	default:
		return span{}, false, d.wrongType(name, "a string", c)
	}
}

func (d *Decoder) wrongType(name, want string, c byte) error {
	if k := valueKind(c); k != "" {
		return fieldErrorf("%q must be %s, got %s", name, want, k)
	}
	return &syntaxError{off: d.pos, msg: unexpectedByte(c)}
}

func (d *Decoder) timeField(name string) (t time.Time, ok bool, err error) {
	switch c := d.in[d.pos]; c {
	case '"':
		if d.tmp, err = d.scanString(d.tmp[:0], true); err != nil {
			return time.Time{}, false, err
		}
		t, err := ParseTime(d.tmp)
		if err != nil {
			return time.Time{}, false, fieldErrorf(`%q must be an RFC 3339 timestamp, got %s`, name, Quote(string(d.tmp)))
		}
		return t, true, nil
	case 'n':
		return time.Time{}, false, d.literal("null")
	default:
		return time.Time{}, false, d.wrongType(name, "an RFC 3339 timestamp string", c)
	}
}

func (d *Decoder) specversionField() (ok bool, err error) {
	switch c := d.in[d.pos]; c {
	case '"':
		if d.tmp, err = d.scanString(d.tmp[:0], true); err != nil {
			return false, err
		}
		if string(d.tmp) != "1.0" {
			return false, fieldErrorf(`"specversion" must be "1.0", got %s`, Quote(string(d.tmp)))
		}
		return true, nil
	case 'n':
		return false, d.literal("null")
	default:
		return false, d.wrongType("specversion", `the string "1.0"`, c)
	}
}

// base64Field reads data_base64 into d.data as a JSON string of its text.
func (d *Decoder) base64Field() (sp span, ok bool, err error) {
	switch c := d.in[d.pos]; c {
	case '"':
		off := len(d.data)
		d.data = append(d.data, '"')
		if d.data, err = d.scanString(d.data, true); err != nil {
			return span{}, false, err
		}
		if !validBase64(d.data[off+1:]) {
			return span{}, false, fieldErrorf(`"data_base64" must be standard base64 with padding (RFC 4648 section 4), got %s`, Quote(string(d.data[off+1:])))
		}
		d.data = append(d.data, '"')
		if n := len(d.data) - off; d.opt.MaxEventBytes > 0 && n > d.opt.MaxEventBytes {
			return span{}, false, &fieldError{tooLarge: true, msg: fmt.Sprintf(
				`"data_base64" is %d bytes; at most %d are stored per event (--max-event-bytes)`, n, d.opt.MaxEventBytes)}
		}
		return span{off, len(d.data)}, true, nil
	case 'n':
		return span{}, false, d.literal("null")
	default:
		return span{}, false, d.wrongType("data_base64", "a base64 string", c)
	}
}

// validBase64 reports whether s is standard, padded base64. Its characters
// then need no escaping in a JSON string.
func validBase64(s []byte) bool {
	if len(s)%4 != 0 {
		return false
	}
	n := len(s)
	if n > 0 && s[n-1] == '=' {
		n--
		if s[n-1] == '=' {
			n--
		}
	}
	for _, c := range s[:n] {
		if !base64Alphabet[c] {
			return false
		}
	}
	return true
}

var base64Alphabet = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = true
	}
	return t
}()

// checkEvent applies the rules that need the whole object, and makes an id
// when a plain event has none.
func (d *Decoder) checkEvent(r *rawEvent, ce bool) error {
	if ce {
		for _, req := range [...]struct {
			f    fieldSet
			name string
		}{{fieldSpecversion, "specversion"}, {fieldID, "id"}, {fieldSource, "source"}, {fieldType, "type"}} {
			if r.present&req.f == 0 {
				return fieldErrorf("%q is required for a CloudEvent", req.name)
			}
		}
	}
	if d.stored && r.present&fieldID == 0 {
		return fieldErrorf(`"id" is required in a stored event`)
	}
	if r.present&fieldID != 0 {
		if err := checkID(r.id.end - r.id.off); err != nil {
			return err
		}
	} else {
		u, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("cannot make an event id: %w", err)
		}
		off := len(d.str)
		d.str = appendUUID(d.str, u)
		r.id = span{off, len(d.str)}
	}
	if r.present&fieldType == 0 {
		return fieldErrorf(`"type" is required`)
	}
	if r.typ.off == r.typ.end {
		return fieldErrorf(`"type" must not be empty`)
	}
	if ce && r.source.off == r.source.end {
		return fieldErrorf(`"source" must not be empty`)
	}
	for _, f := range [...]struct {
		name string
		sp   span
	}{{"type", r.typ}, {"source", r.source}, {"subject", r.subject}} {
		if n := f.sp.end - f.sp.off; n > MaxFieldLength {
			return fieldErrorf(`%q must be at most %d bytes, got %d`, f.name, MaxFieldLength, n)
		}
	}
	if r.present&fieldData != 0 && r.present&fieldDataBase64 != 0 {
		return fieldErrorf(`"data" and "data_base64" are mutually exclusive; give one`)
	}
	return nil
}

func checkID(n int) error {
	if n == 0 {
		return fieldErrorf(`"id" must not be empty`)
	}
	if n > MaxIDLength {
		return fieldErrorf(`"id" must be at most %d bytes, got %d`, MaxIDLength, n)
	}
	return nil
}

func appendUUID(dst []byte, u uuid.UUID) []byte {
	dst = hex.AppendEncode(dst, u[0:4])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, u[4:6])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, u[6:8])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, u[8:10])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, u[10:16])
}

// build turns the decoded events into Events. Their strings share one
// new string and their data one new byte slice; neither is pooled.
func (d *Decoder) Events() []Event {
	opt := &d.opt
	strs := string(d.str)
	var data []byte
	if len(d.data) > 0 {
		data = exactCopy(d.data)
	}
	evs := make([]Event, len(d.events))
	for i := range d.events {
		r, e := &d.events[i], &evs[i]
		e.ID = strs[r.id.off:r.id.end]
		e.Type = strs[r.typ.off:r.typ.end]
		e.Source = strs[r.source.off:r.source.end]
		if e.Source == "" {
			e.Source = opt.DefaultSource
		}
		e.Subject = strs[r.subject.off:r.subject.end]
		if r.present&fieldTime != 0 {
			e.Time = r.time
		} else {
			e.Time = opt.Now
		}
		e.ReceivedAt = opt.Now
		if r.present&fieldReceivedAt != 0 {
			e.ReceivedAt = r.receivedAt
		}
		if r.present&(fieldData|fieldDataBase64) != 0 {
			// A full slice expression, so that appending to one event's
			// data cannot overwrite the next one's.
			e.Data = data[r.data.off:r.data.end:r.data.end]
		}
	}
	d.str, d.data, d.events = d.str[:0], d.data[:0], d.events[:0]
	return evs
}

// ---------------------------------------------------------------------------
// The JSON scanner

// syntaxError is a body that is not JSON, or (store set) JSON that holds
// what no store keeps. off is a byte offset in d.in.
type syntaxError struct {
	off   int
	msg   string
	store bool
}

func (e *syntaxError) Error() string { return e.msg }

// describe says what is wrong and where: at a byte offset, or at a column
// (of an NDJSON line) when col is set.
func (e *syntaxError) describe(col bool) string {
	where := fmt.Sprintf("offset %d", e.off)
	if col {
		where = fmt.Sprintf("column %d", e.off+1)
	}
	if e.store {
		return "at " + where + ": " + e.msg
	}
	return "invalid JSON at " + where + ": " + e.msg
}

func (d *Decoder) eof() error {
	return &syntaxError{off: len(d.in), msg: "unexpected end of input"}
}

func (d *Decoder) skipWS() {
	for d.pos < len(d.in) {
		switch d.in[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// plainStringByte marks the bytes a JSON string holds as they are.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// hasSpecialByte reports whether any of the 8 bytes in x is not a
// plainStringByte: below 0x20, '"', '\\' or not ASCII. (x - n*0x01..) & ^x
// & 0x80.. is non-zero exactly when some byte of x is below n.
func hasSpecialByte(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ ('"' * ones)
	b := x ^ ('\\' * ones)
	return ((x-0x20*ones)&^x|(q-ones)&^q|(b-ones)&^b|x)&highs != 0
}

// colon reads the ':' after a field name, and the blanks around it.
func (d *Decoder) colon() error {
	d.skipWS()
	if d.pos == len(d.in) {
		return d.eof()
	}
	if d.in[d.pos] != ':' {
		return &syntaxError{off: d.pos, msg: unexpectedByte(d.in[d.pos]) + " after a field name; expected ':'"}
	}
	d.pos++
	d.skipWS()
	return nil
}

// scanString reads the string at d.pos (a '"'), appending its decoded text to
// dst when emit is set. It checks UTF-8 and escapes, and refuses unpaired
// surrogates and \u0000.
func (d *Decoder) scanString(dst []byte, emit bool) ([]byte, error) {
	in := d.in
	i := d.pos + 1
	for {
		start := i
		for i+8 <= len(in) && !hasSpecialByte(binary.LittleEndian.Uint64(in[i:])) {
			i += 8
		}
		for i < len(in) && plainStringByte[in[i]] {
			i++
		}
		if emit {
			dst = append(dst, in[start:i]...)
		}
		if i == len(in) {
			return dst, d.eof()
		}
		switch c := in[i]; {
		case c == '"':
			d.pos = i + 1
			return dst, nil
		case c == '\\':
			if i+1 == len(in) {
				return dst, d.eof()
			}
			var b byte
			switch in[i+1] {
			case '"', '\\', '/':
				b = in[i+1]
			case 'b':
				b = '\b'
			case 'f':
				b = '\f'
			case 'n':
				b = '\n'
			case 'r':
				b = '\r'
			case 't':
				b = '\t'
			case 'u':
				r, n, err := d.unicodeEscape(i)
				if err != nil {
					return dst, err
				}
				if emit {
					dst = utf8.AppendRune(dst, r)
				}
				i += n
				continue
			default:
				return dst, &syntaxError{off: i, msg: fmt.Sprintf("invalid escape %s in string", Quote(string(in[i:i+2])))}
			}
			if emit {
				dst = append(dst, b)
			}
			i += 2
		case c < 0x20:
			return dst, &syntaxError{off: i, msg: fmt.Sprintf("control character %#02x in string; it must be escaped", c)}
		default:
			r, n := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && n == 1 {
				return dst, &syntaxError{off: i, msg: "invalid UTF-8 in string"}
			}
			if emit {
				dst = append(dst, in[i:i+n]...)
			}
			i += n
		}
	}
}

// unicodeEscape reads \uXXXX at in[i] (and its low surrogate, if it is a high
// one). It returns the rune and how many bytes it took. \u0000 is an error:
// no store keeps it (PostgreSQL's text and jsonb refuse it).
func (d *Decoder) unicodeEscape(i int) (rune, int, error) {
	r, err := d.hex4(i)
	if err != nil {
		return 0, 0, err
	}
	switch {
	case r == 0:
		return 0, 0, &syntaxError{off: i, msg: `\u0000 (NUL) in a string, which PostgreSQL cannot store`, store: true}
	case r >= 0xDC00 && r <= 0xDFFF:
		return 0, 0, &syntaxError{off: i, msg: fmt.Sprintf(`unpaired surrogate \u%04x in string`, r)}
	case r >= 0xD800 && r <= 0xDBFF:
		if rest := d.in[i+6:]; len(rest) >= 2 && rest[0] == '\\' && rest[1] == 'u' {
			r2, err := d.hex4(i + 6)
			if err != nil {
				return 0, 0, err
			}
			if r2 >= 0xDC00 && r2 <= 0xDFFF {
				return utf16.DecodeRune(r, r2), 12, nil
			}
		} else if len(rest) < 2 && string(rest) == `\u`[:len(rest)] {
			return 0, 0, d.eof()
		}
		return 0, 0, &syntaxError{off: i, msg: fmt.Sprintf(`unpaired surrogate \u%04x in string`, r)}
	}
	return r, 6, nil
}

// hex4 reads the four hex digits of \uXXXX at in[i].
func (d *Decoder) hex4(i int) (rune, error) {
	in := d.in
	if i+6 > len(in) {
		for j := i + 2; j < len(in); j++ {
			if hexValue(in[j]) < 0 {
				return 0, &syntaxError{off: i, msg: "invalid \\u escape in string"}
			}
		}
		return 0, d.eof()
	}
	var r rune
	for _, c := range in[i+2 : i+6] {
		v := hexValue(c)
		if v < 0 {
			return 0, &syntaxError{off: i, msg: fmt.Sprintf("invalid escape %s in string", Quote(string(in[i:i+6])))}
		}
		r = r<<4 | v
	}
	return r, nil
}

func hexValue(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// skipValue checks the JSON value at d.pos and moves past it: an extension
// attribute, which is dropped, so only JSON's own rules apply. name is the
// field it belongs to, for the message about nesting.
func (d *Decoder) skipValue(depth int, name string) error {
	return d.value(depth, 0, name, false)
}

// dataValue checks the data value at d.pos, which is stored, against the
// rules every store keeps (see Decode) and moves past it. name is what it is
// called in messages: "data" or "the body".
func (d *Decoder) dataValue(name string) error {
	start := d.pos
	objs := 1 // Elasticsearch stores any other value inside an object
	if d.in[d.pos] == '{' {
		objs = 0
	}
	if err := d.value(0, objs, name, true); err != nil {
		return err
	}
	if n := d.pos - start; d.opt.MaxEventBytes > 0 && n > d.opt.MaxEventBytes {
		return &fieldError{tooLarge: true, msg: fmt.Sprintf(
			"%s is %d bytes; at most %d are stored per event (--max-event-bytes)", name, n, d.opt.MaxEventBytes)}
	}
	return nil
}

// value checks the JSON value at d.pos and moves past it. depth counts the
// arrays and objects around it, objs the objects alone (what Elasticsearch's
// flattened field counts). data applies the rules of stored data: no key
// twice in one object, no \u0000, numbers within a float64, objects at most
// MaxObjectDepth deep.
func (d *Decoder) value(depth, objs int, name string, data bool) error {
	if d.pos == len(d.in) {
		return d.eof()
	}
	if name == "" {
		name = "a field"
	}
	switch c := d.in[d.pos]; c {
	case '{', '[':
		if depth == MaxDataDepth {
			return fieldErrorf("%s is nested more than %d levels deep", name, MaxDataDepth)
		}
		if c == '{' && data {
			if objs == MaxObjectDepth {
				return fieldErrorf("%s has objects nested more than %d deep, the most Elasticsearch's flattened field takes", name, MaxObjectDepth)
			}
			objs++
		}
		return d.composite(c, depth+1, objs, name, data)
	case '"':
		_, err := d.scanString(nil, false)
		return err
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		if c == '-' || ('0' <= c && c <= '9') {
			start := d.pos
			if err := d.skipNumber(); err != nil || !data {
				return err
			}
			return checkNumber(d.in[start:d.pos], name)
		}
		return &syntaxError{off: d.pos, msg: unexpectedByte(c)}
	}
}

func (d *Decoder) composite(open byte, depth, objs int, name string, data bool) error {
	close := byte(']')
	if open == '{' {
		close = '}'
	}
	keys, kbuf := len(d.dkeys), len(d.kbuf)
	d.pos++
	d.skipWS()
	if d.pos < len(d.in) && d.in[d.pos] == close {
		d.pos++
		return nil
	}
	for {
		if open == '{' {
			if d.pos == len(d.in) {
				return d.eof()
			}
			if d.in[d.pos] != '"' {
				return &syntaxError{off: d.pos, msg: unexpectedByte(d.in[d.pos]) + "; expected a field name in double quotes"}
			}
			if data {
				// Keys are compared as decoded, as the stores do.
				off := len(d.kbuf)
				key, err := d.scanKey()
				if err != nil {
					return err
				}
				if err := d.reserveKey(len(key)); err != nil {
					return err
				}
				d.kbuf = append(d.kbuf, key...)
				if n := len(d.kbuf) - off; n > MaxKeyBytes {
					return fieldErrorf("%s has a key of %d bytes; at most %d are stored", name, n, MaxKeyBytes)
				}
				d.dkeys = append(d.dkeys, span{off, len(d.kbuf)})
			} else if _, err := d.scanString(nil, false); err != nil {
				return err
			}
			if err := d.colon(); err != nil {
				return err
			}
		}
		if err := d.value(depth, objs, name, data); err != nil {
			return err
		}
		d.skipWS()
		if d.pos == len(d.in) {
			return d.eof()
		}
		switch c := d.in[d.pos]; c {
		case ',':
			d.pos++
			d.skipWS()
		case close:
			d.pos++
			if data && open == '{' {
				if k := d.duplicateKey(d.dkeys[keys:]); k != nil {
					return fieldErrorf("%s has the key %s twice in one object; Elasticsearch refuses that, and PostgreSQL would keep only the last", name, Quote(string(k)))
				}
				d.dkeys, d.kbuf = d.dkeys[:keys], d.kbuf[:kbuf]
			}
			return nil
		default:
			return &syntaxError{off: d.pos, msg: fmt.Sprintf("%s; expected ',' or '%c'", unexpectedByte(c), close)}
		}
	}
}

// reserveKey asks Reserve for the memory of one more key of n bytes kept
// for the duplicate check, when it makes a buffer grow: an object of many
// short keys costs more than its text.
func (d *Decoder) reserveKey(n int) error {
	if d.opt.Reserve == nil {
		return nil
	}
	if len(d.dkeys) == cap(d.dkeys) && !d.opt.Reserve(int64(2*cap(d.dkeys)+64)*int64(unsafe.Sizeof(span{}))) {
		return ErrBusy
	}
	if len(d.kbuf)+n > cap(d.kbuf) && !d.opt.Reserve(int64(2*cap(d.kbuf)+n)) {
		return ErrBusy
	}
	return nil
}

// duplicateKey returns a key that keys (spans of d.kbuf) hold twice, or nil.
// It may reorder keys.
func (d *Decoder) duplicateKey(keys []span) []byte {
	key := func(s span) []byte { return d.kbuf[s.off:s.end] }
	if len(keys) <= 8 {
		for i := 1; i < len(keys); i++ {
			for j := range i {
				if bytes.Equal(key(keys[i]), key(keys[j])) {
					return key(keys[i])
				}
			}
		}
		return nil
	}
	slices.SortFunc(keys, func(a, b span) int { return bytes.Compare(key(a), key(b)) })
	for i := 1; i < len(keys); i++ {
		if bytes.Equal(key(keys[i]), key(keys[i-1])) {
			return key(keys[i])
		}
	}
	return nil
}

// checkNumber refuses a number of data that a float64 cannot hold: one too
// large for it, or too small to be told from zero. Such numbers do not
// survive JSON readers (JavaScript's included, so Kibana's), and the largest
// exponents are past what PostgreSQL's numeric holds. A number is also at
// most MaxNumberLength characters long.
func checkNumber(num []byte, name string) error {
	if len(num) > MaxNumberLength {
		return fieldErrorf("%s has a number of %d characters; at most %d are stored", name, len(num), MaxNumberLength)
	}
	exp := -1
	for i, c := range num {
		if c|0x20 == 'e' {
			exp = i
			break
		}
	}
	if len(num) <= 15 && exp < 0 {
		return nil // at most 15 digits: within a float64, and not near zero
	}
	if exp >= 0 {
		// PostgreSQL's numeric keeps at most 16,383 digits after the point,
		// even of a zero (0e-16384 overflows it); any float64 needs fewer
		// than 400.
		e, err := strconv.Atoi(string(num[exp+1:]))
		if err != nil || e > MaxExponent || e < -MaxExponent {
			return fieldErrorf("%s has the number %s, whose exponent is beyond ±%d", name, Quote(string(num)), MaxExponent)
		}
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		return fieldErrorf("%s has the number %s, too large for a float64 (at most about 1.8e308)", name, Quote(string(num)))
	}
	if f == 0 {
		mant := num
		if exp >= 0 {
			mant = num[:exp]
		}
		if bytes.IndexAny(mant, "123456789") >= 0 {
			return fieldErrorf("%s has the number %s, too close to zero for a float64 (at least about 4.9e-324)", name, Quote(string(num)))
		}
	}
	return nil
}

func (d *Decoder) literal(word string) error {
	in := d.in[d.pos:]
	for i := 0; i < len(word); i++ {
		if i == len(in) {
			return d.eof()
		}
		if in[i] != word[i] {
			return &syntaxError{off: d.pos + i, msg: unexpectedByte(in[i]) + " in literal " + word}
		}
	}
	d.pos += len(word)
	return nil
}

// skipNumber checks the RFC 8259 number grammar.
func (d *Decoder) skipNumber() error {
	in, i := d.in, d.pos
	digits := func() error {
		if i == len(in) {
			return d.eof()
		}
		if in[i] < '0' || in[i] > '9' {
			return &syntaxError{off: i, msg: unexpectedByte(in[i]) + " in number; expected a digit"}
		}
		for i < len(in) && '0' <= in[i] && in[i] <= '9' {
			i++
		}
		return nil
	}
	if in[i] == '-' {
		i++
	}
	if i < len(in) && in[i] == '0' {
		i++
	} else if err := digits(); err != nil {
		return err
	}
	if i < len(in) && in[i] == '.' {
		i++
		if err := digits(); err != nil {
			return err
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if err := digits(); err != nil {
			return err
		}
	}
	d.pos = i
	return nil
}

// valueKind names the JSON value starting with c, or "" if none does.
func valueKind(c byte) string {
	switch {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || ('0' <= c && c <= '9'):
		return "a number"
	}
	return ""
}

func unexpectedByte(c byte) string {
	if c >= 0x20 && c < 0x7F {
		return fmt.Sprintf("unexpected character %q", c)
	}
	return fmt.Sprintf("unexpected byte %#02x", c)
}

// ---------------------------------------------------------------------------
// Errors

func invalid(index int, msg string) *DecodeError {
	return &DecodeError{Index: index, Message: msg}
}

// syntaxRequestError is a syntax error that is not inside one event.
func (d *Decoder) syntaxRequestError(index, off int, msg string) *DecodeError {
	return &DecodeError{Index: index, Syntax: true, Message: fmt.Sprintf("invalid JSON at offset %d: %s", off, msg)}
}

// eventError turns an error from parsing event idx into a *DecodeError.
// line is its NDJSON line (0: not NDJSON), and offsets are then columns.
func (d *Decoder) eventError(idx, line int, err error) error {
	where := fmt.Sprintf("event %d", idx)
	if line > 0 {
		where = fmt.Sprintf("event %d (line %d)", idx, line)
	}
	return d.valueError(idx, where, line > 0, err)
}

// valueError turns an error from the scanner into a *DecodeError for the
// value called where.
func (d *Decoder) valueError(idx int, where string, col bool, err error) error {
	var se *syntaxError
	var fe *fieldError
	if where != "" {
		where += ": "
	}
	switch {
	case errors.As(err, &se):
		return &DecodeError{Index: idx, Syntax: !se.store, Message: where + se.describe(col)}
	case errors.As(err, &fe):
		return &DecodeError{Index: idx, TooLarge: fe.tooLarge, Message: where + fe.msg}
	default:
		return err // not the input's fault: making an id failed
	}
}

// Quote quotes s for a message, cut to a readable length.
func Quote(s string) string {
	const limit = 64
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}

// ---------------------------------------------------------------------------
// Time

// ParseTime parses an RFC 3339 timestamp exactly as time.Parse with
// time.RFC3339Nano does. The common UTC form is parsed here without
// allocating; anything else goes to time.Parse.
func ParseTime(b []byte) (time.Time, error) {
	if t, ok := parseRFC3339UTC(b); ok {
		return t, nil
	}
	return time.Parse(time.RFC3339Nano, string(b))
}

// parseRFC3339UTC parses YYYY-MM-DDTHH:MM:SS[.fraction]Z. It reports false
// for anything else, including values time.Parse would accept; it never
// accepts one time.Parse would refuse (FuzzParseTime checks that).
func parseRFC3339UTC(b []byte) (time.Time, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return time.Time{}, false
	}
	year, ok1 := digitsAt(b, 0, 4)
	month, ok2 := digitsAt(b, 5, 2)
	day, ok3 := digitsAt(b, 8, 2)
	hour, ok4 := digitsAt(b, 11, 2)
	minute, ok5 := digitsAt(b, 14, 2)
	sec, ok6 := digitsAt(b, 17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		n, ok := digitsAt(frac, 1, len(frac)-1)
		if !ok {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			n *= 10
		}
		nsec = n
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

func digitsAt(b []byte, at, n int) (int, bool) {
	v := 0
	for _, c := range b[at : at+n] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// JSONStringLen is the length of AppendJSONString's output for s.
func JSONStringLen(s []byte) int {
	n := len(s) + 2
	for _, c := range s {
		switch {
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
			n++
		case c < 0x20:
			n += 5
		}
	}
	return n
}

// AppendJSONString appends s, valid UTF-8, as a JSON string: only '"', '\\'
// and control characters are escaped (no HTML escaping).
func AppendJSONString(dst, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i, c := range s {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
