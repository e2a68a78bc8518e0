package api

// The request decoder of POST /v1/events.
//
// It is the hot path of ingestion, so it does not use encoding/json: a small
// hand-written scanner walks the body once, validates it as JSON (RFC 8259,
// UTF-8 only) and picks out the envelope fields. Decoded strings of all events
// go into one scratch arena and data values into another; when the whole
// request is valid the arenas are copied once into a single string and a
// single byte slice that the events share, so a request of 1,000 events costs
// a handful of allocations, and the pooled read buffer is reused by the next
// request. An event never points into memory that the decoder reuses, and it
// never keeps more of the request alive than its own fields.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/google/uuid"

	"eventlistener/event"
)

// DecodeOptions says how Decode treats one request.
type DecodeOptions struct {
	// MaxBytes is the largest body accepted, counted after decompression.
	// Zero or less means 1 MiB. A gzip body may also be at most
	// MaxBytes + MaxBytes/8 + 4 KiB before decompression, which any body
	// within MaxBytes fits.
	MaxBytes int64
	// Now becomes ReceivedAt of every event, and Time of an event that has
	// none. The zero value means time.Now().
	Now time.Time
	// DefaultSource is the Source of a plain JSON or NDJSON event that has
	// none or an empty one. CloudEvents must carry their own source.
	DefaultSource string
	// MaxEvents is the most events one request may hold (413 beyond);
	// zero or less means no limit. Tiny events expand most: each costs
	// about 300 bytes of memory however short its JSON.
	MaxEvents int
	// MaxEventBytes is the largest data one event may store, counted as
	// stored (binary-mode text escaped as a JSON string); zero or less
	// means no limit beyond MaxBytes. 413 beyond.
	MaxEventBytes int
	// Reserve, when set, is asked before the decoder allocates n more bytes
	// for the body or for events; false refuses the request with 503.
	Reserve func(n int64) bool
}

// RequestError is a request the API refuses.
type RequestError struct {
	// Status is the HTTP status to answer with: 400, 413 or 415.
	Status int
	// Index is the position of the bad event in the request (counting
	// events, not lines), or -1 when the error is not about one event.
	Index int
	// Message says what is wrong and where, for the client.
	Message string
}

func (e *RequestError) Error() string { return e.Message }

// Decode reads a POST /v1/events body in any supported format. All or
// nothing: either every event is valid and returned, or a *RequestError.
//
// Formats, chosen by the media type of Content-Type (a missing one means
// application/json):
//   - application/json: one event object, or an array of them;
//   - application/x-ndjson (also application/ndjson, application/jsonl): one
//     event object per line, blank lines skipped;
//   - application/cloudevents+json: one CloudEvent (structured mode);
//   - application/cloudevents-batch+json: an array of CloudEvents;
//   - CloudEvents binary mode: a Ce-Specversion header with any other content
//     type; the attributes are in ce-* headers and the body is the data.
//
// Header names are looked up in canonical form (http.CanonicalHeaderKey), as
// net/http and http.Header.Set store them.
//
// The body may be gzip-compressed (Content-Encoding: gzip). JSON must be
// UTF-8; a charset parameter other than utf-8 or us-ascii is refused.
//
// Event fields (plain JSON uses the CloudEvents names): id (a UUIDv7 is made
// when absent), type (required), source (DefaultSource when absent or
// empty), subject, time (RFC 3339; Now when absent), data (any JSON value,
// kept byte for byte) or data_base64 (kept as the JSON string of its base64
// text), specversion (must be "1.0" when present). datacontenttype,
// dataschema and extension attributes are accepted and dropped. CloudEvents
// modes also require specversion, id and source. In binary mode a JSON body
// (application/json, text/json, */*+json) is the data as is, any other body
// becomes a JSON string of its text, or of its base64 when it is not UTF-8
// text (or holds a NUL); an empty body is no data.
//
// Stricter than encoding/json, on purpose:
//   - a JSON null counts as absent for every field, data included, so
//     "data": null stores no data and "id": null gets a generated id;
//   - field names match exactly (encoding/json would also match "ID");
//   - a field given twice is an error (encoding/json keeps the last);
//   - invalid UTF-8 anywhere or an unpaired UTF-16 surrogate escape is an
//     error (encoding/json would silently replace them with U+FFFD), and so
//     is \u0000 (PostgreSQL cannot store it);
//   - data may nest at most 512 levels deep, well within what PostgreSQL
//     and Elasticsearch accept.
//
// Data must also be what every store keeps (the README's input contract),
// so that no event is accepted and then refused: no key twice in one object
// (Elasticsearch refuses it, PostgreSQL keeps the last), objects at most
// maxObjectDepth deep, keys of at most maxKeyBytes, numbers of at most
// maxNumberLength characters that a float64 holds; 400 otherwise. Data over
// MaxEventBytes, as stored, is 413.
//
// A leading UTF-8 byte order mark is ignored.
//
// Every refusal is a *RequestError: 400 for a body that is malformed, invalid
// or unreadable, 413 for one too large (also when body is an
// http.MaxBytesReader that hit its limit), 415 for an unsupported
// Content-Type, charset or Content-Encoding. The one other error is failing
// to make an id, which Go's crypto/rand never does.
func Decode(h http.Header, body io.Reader, opt DecodeOptions) ([]event.Event, error) {
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = defaultDecodeMaxBytes
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	ct, rerr := classifyContentType(h)
	if rerr != nil {
		return nil, rerr
	}
	gz, rerr := contentEncodingIsGzip(h)
	if rerr != nil {
		return nil, rerr
	}

	d := decodeStatePool.Get().(*decodeState)
	defer d.release()
	d.maxEvents, d.maxEventBytes, d.reserve = opt.MaxEvents, opt.MaxEventBytes, opt.Reserve
	if rerr := d.readBody(body, gz, opt.MaxBytes); rerr != nil {
		return nil, rerr
	}

	var err error
	switch ct.format {
	case formatBinary:
		return d.decodeBinary(h, ct, opt)
	case formatNDJSON:
		err = d.decodeNDJSON()
	default:
		err = d.decodeDocument(ct.format)
	}
	if err != nil {
		return nil, err
	}
	return d.build(&opt), nil
}

// defaultDecodeMaxBytes is the body limit when DecodeOptions.MaxBytes is unset.
const defaultDecodeMaxBytes = 1 << 20

// maxDataDepth is how deeply a data value (or an extension attribute) may
// nest. Elasticsearch's JSON parser refuses documents nested more than 1,000
// levels and PostgreSQL recurses per level, so 512 leaves room for the
// envelope around the data everywhere the event goes.
const maxDataDepth = 512

// maxObjectDepth is how deeply objects may nest in data, the depth_limit of
// Elasticsearch's flattened field (its default, which the template states). A
// data value that is not an object is stored inside one, which counts.
const maxObjectDepth = 20

// maxKeyBytes is the longest key in data. Elasticsearch indexes each leaf of
// the flattened field as one term of its dotted key and its value, and a term
// over 32,766 bytes refuses the document: 20 keys of 1,000 bytes and a value
// of the template's ignore_above (4,096 characters, at most 12,288 bytes;
// longer ones are kept unindexed) always fit.
const maxKeyBytes = 1000

// maxNumberLength is the longest number accepted in data: ample for any
// float64 or 64-bit integer, and within what JSON parsers take (Jackson,
// which Elasticsearch uses, refuses numbers over 1,000 characters).
const maxNumberLength = 100

// maxPooledBytes bounds each buffer kept in the pool, so that one huge request
// does not pin its buffers for the life of the process.
const maxPooledBytes = 4 << 20

// ---------------------------------------------------------------------------
// Content-Type and Content-Encoding

type bodyFormat uint8

const (
	formatJSON bodyFormat = iota + 1
	formatNDJSON
	formatStructured
	formatBatch
	formatBinary
)

type contentType struct {
	format bodyFormat
	// media is the lower-case media type; "application/json" when the header
	// is missing.
	media string
}

const (
	mediaJSON       = "application/json"
	mediaNDJSON     = "application/x-ndjson"
	mediaStructured = "application/cloudevents+json"
	mediaBatch      = "application/cloudevents-batch+json"
)

// acceptedContentTypes is named in every 415 about Content-Type.
const acceptedContentTypes = "application/json, application/x-ndjson (or application/ndjson, application/jsonl), " +
	"application/cloudevents+json, application/cloudevents-batch+json, " +
	"or CloudEvents binary mode (a Ce-Specversion header with the data's own Content-Type)"

// commonMediaTypes are matched without mime.ParseMediaType, which allocates.
var commonMediaTypes = [...]string{mediaJSON, mediaNDJSON, mediaStructured, mediaBatch}

func classifyContentType(h http.Header) (contentType, *RequestError) {
	var raw string
	if vs := h["Content-Type"]; len(vs) > 0 {
		raw = vs[0]
	}
	media := mediaJSON
	var params map[string]string
	if raw != "" {
		known := false
		for _, m := range commonMediaTypes {
			if strings.EqualFold(raw, m) {
				media, known = m, true
				break
			}
		}
		if !known {
			m, p, err := mime.ParseMediaType(raw)
			if m == "" {
				return contentType{}, &RequestError{Status: http.StatusUnsupportedMediaType, Index: -1,
					Message: fmt.Sprintf("cannot parse Content-Type %s: %v; accepted: %s", quoteTrunc(raw), err, acceptedContentTypes)}
			}
			// A malformed parameter (ErrInvalidMediaParameter) still
			// names the media type, which is all that matters here.
			media, params = m, p
		}
	}
	binaryMode := len(h["Ce-Specversion"]) > 0

	var f bodyFormat
	switch {
	case strings.HasPrefix(media, "application/cloudevents-batch"):
		if media != mediaBatch {
			return contentType{}, unsupportedMedia(media, "only the JSON batch format "+mediaBatch+" is supported")
		}
		f = formatBatch
	case strings.HasPrefix(media, "application/cloudevents"):
		if media != mediaStructured {
			return contentType{}, unsupportedMedia(media, "only the JSON event format "+mediaStructured+" is supported")
		}
		f = formatStructured
	case binaryMode:
		f = formatBinary
	case media == mediaJSON:
		f = formatJSON
	case media == mediaNDJSON, media == "application/ndjson", media == "application/jsonl":
		f = formatNDJSON
	default:
		return contentType{}, unsupportedMedia(media, "accepted: "+acceptedContentTypes)
	}
	if cs, ok := params["charset"]; ok && (f != formatBinary || isJSONMedia(media)) {
		if !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") && !strings.EqualFold(cs, "us-ascii") {
			return contentType{}, &RequestError{Status: http.StatusUnsupportedMediaType, Index: -1,
				Message: fmt.Sprintf("unsupported charset %s in Content-Type; JSON must be UTF-8", quoteTrunc(cs))}
		}
	}
	return contentType{format: f, media: media}, nil
}

func unsupportedMedia(media, hint string) *RequestError {
	return &RequestError{Status: http.StatusUnsupportedMediaType, Index: -1,
		Message: fmt.Sprintf("unsupported Content-Type %s; %s", quoteTrunc(media), hint)}
}

// isJSONMedia reports whether a binary-mode body of this media type is JSON.
func isJSONMedia(media string) bool {
	return media == mediaJSON || media == "text/json" || strings.HasSuffix(media, "+json")
}

// contentEncodingIsGzip reads Content-Encoding: empty or identity means the
// body is as is; gzip or x-gzip (once) means it is compressed.
func contentEncodingIsGzip(h http.Header) (bool, *RequestError) {
	gz := false
	for _, v := range h["Content-Encoding"] {
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.TrimSpace(tok)
			switch {
			case tok == "" || strings.EqualFold(tok, "identity"):
			case (strings.EqualFold(tok, "gzip") || strings.EqualFold(tok, "x-gzip")) && !gz:
				gz = true
			default:
				return false, &RequestError{Status: http.StatusUnsupportedMediaType, Index: -1,
					Message: fmt.Sprintf("unsupported Content-Encoding %s; use gzip or identity",
						quoteTrunc(strings.Join(h["Content-Encoding"], ", ")))}
			}
		}
	}
	return gz, nil
}

// ---------------------------------------------------------------------------
// Reading the body

// decodeState is one request's scratch space. It is pooled: nothing in it may
// escape into the returned events.
type decodeState struct {
	body []byte // the whole (decompressed) body

	in  []byte // what the scanner reads: the body, or one NDJSON line
	pos int    // the scanner's position in in

	str    []byte     // decoded strings of all events (and generated ids)
	data   []byte     // data values of all events
	key    []byte     // the field name being matched
	tmp    []byte     // a field value that is checked, not kept
	events []rawEvent // fields of each event, as spans of str and data
	kbuf   []byte     // decoded keys of the data objects being read
	dkeys  []span     // those keys, as spans of kbuf, innermost object last

	wire          wireLimiter
	wireLimit     int64
	br            *bufio.Reader
	maxEvents     int
	maxEventBytes int
	reserve       func(n int64) bool
}

// errBudget refuses a request the decode budget has no room for.
var errBudget = &RequestError{Status: http.StatusServiceUnavailable, Index: -1,
	Message: "the engine is decoding as many requests as its memory budget allows (--decode-budget); retry shortly"}

func (d *decodeState) reserved(n int64) bool { return d.reserve == nil || d.reserve(n) }

// tooMany refuses event i of a request when it is one more than allowed.
func (d *decodeState) tooMany(i int) *RequestError {
	if d.maxEvents <= 0 || i < d.maxEvents {
		if i%eventStep == 0 && !d.reserved(eventStep*eventCost) {
			return errBudget
		}
		return nil
	}
	return &RequestError{Status: http.StatusRequestEntityTooLarge, Index: i,
		Message: fmt.Sprintf("more than %d events in one request: split it into smaller ones", d.maxEvents)}
}

var decodeStatePool = sync.Pool{New: func() any { return new(decodeState) }}

var gzipReaderPool sync.Pool // of *gzip.Reader

func (d *decodeState) release() {
	d.body = keepSmall(d.body)
	d.str = keepSmall(d.str)
	d.data = keepSmall(d.data)
	d.key = keepSmall(d.key)
	d.tmp = keepSmall(d.tmp)
	d.kbuf = keepSmall(d.kbuf)
	d.dkeys = d.dkeys[:0]
	if cap(d.events) > 1<<16 {
		d.events = nil
	}
	d.events = d.events[:0]
	d.in, d.pos = nil, 0
	d.wire = wireLimiter{}
	if d.br != nil {
		d.br.Reset(nil)
	}
	decodeStatePool.Put(d)
}

func keepSmall(b []byte) []byte {
	if cap(b) > maxPooledBytes {
		return nil
	}
	return b[:0]
}

// wireLimiter stops reading compressed bytes after a limit. A gzip stream can
// be made of empty blocks that decompress to nothing, so the limit after
// decompression alone would not stop a client from streaming forever.
type wireLimiter struct {
	r        io.Reader
	left     int64
	exceeded bool
}

var errWireLimit = errors.New("compressed body too large")

func (w *wireLimiter) Read(p []byte) (int, error) {
	if w.left <= 0 {
		// A body of exactly the limit is fine: look for one byte more.
		var one [1]byte
		n, err := w.r.Read(one[:])
		if n == 0 {
			return 0, err
		}
		w.exceeded = true
		return 0, errWireLimit
	}
	if int64(len(p)) > w.left {
		p = p[:w.left]
	}
	n, err := w.r.Read(p)
	w.left -= int64(n)
	return n, err
}

// readBody reads the body, decompressing it when gz is set, into d.body. It
// never reads or allocates more than maxBytes+1 bytes of decompressed body.
func (d *decodeState) readBody(body io.Reader, gz bool, maxBytes int64) *RequestError {
	if body == nil {
		body = http.NoBody
	}
	src := body
	if gz {
		// Compressed data is at most a little larger than what it holds
		// (stored blocks cost 5 bytes per 64 KiB), so this only cuts off
		// streams that could never decompress to an acceptable body.
		d.wireLimit = maxBytes + maxBytes/8 + 4096
		d.wire = wireLimiter{r: body, left: d.wireLimit}
		if d.br == nil {
			d.br = bufio.NewReaderSize(&d.wire, 4096)
		} else {
			d.br.Reset(&d.wire)
		}
		zr, _ := gzipReaderPool.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		defer gzipReaderPool.Put(zr)
		if err := zr.Reset(d.br); err != nil {
			return d.readError(err, gz)
		}
		src = zr
	}

	// Read until EOF or one byte past the limit, growing the buffer by
	// doubling but never past the limit, so that a gzip bomb costs at most
	// maxBytes+1 bytes. A gzip reader returns io.EOF only after checking
	// the trailer's checksum and size.
	limit := maxBytes + 1
	buf := d.body[:0]
	var reserved int64
	for int64(len(buf)) < limit {
		if len(buf) == cap(buf) {
			n := int64(max(2*cap(buf), 16<<10))
			if n > limit-limit/4 {
				n = limit // rather than doubling to just short of it
			}
			nb := make([]byte, len(buf), int(n))
			copy(nb, buf)
			buf = nb
		}
		// Reserve before reading: twice what the body will hold, as it
		// becomes the events' strings and data too. A buffer from the pool
		// is read into in the steps a fresh one would grow by, so a small
		// request reserves little however large its buffer.
		to := min(int64(cap(buf)), limit, int64(max(2*len(buf), 16<<10)))
		if need := 2*to - reserved; need > 0 {
			if !d.reserved(need) {
				d.body = buf
				return errBudget
			}
			reserved += need
		}
		n, err := src.Read(buf[len(buf):int(to)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			d.body = buf
			return d.readError(err, gz)
		}
	}
	d.body = buf
	if int64(len(buf)) > maxBytes {
		return tooLarge(maxBytes, gz)
	}
	return nil
}

func tooLarge(maxBytes int64, gz bool) *RequestError {
	msg := fmt.Sprintf("request body is larger than %d bytes", maxBytes)
	if gz {
		msg += " after decompression"
	}
	return &RequestError{Status: http.StatusRequestEntityTooLarge, Index: -1, Message: msg}
}

func (d *decodeState) readError(err error, gz bool) *RequestError {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return &RequestError{Status: http.StatusRequestEntityTooLarge, Index: -1,
			Message: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
	case gz && d.wire.exceeded:
		return &RequestError{Status: http.StatusRequestEntityTooLarge, Index: -1,
			Message: fmt.Sprintf("request body is larger than %d bytes before decompression", d.wireLimit)}
	case gz:
		return &RequestError{Status: http.StatusBadRequest, Index: -1,
			Message: fmt.Sprintf("cannot decompress gzip request body: %v", err)}
	default:
		return &RequestError{Status: http.StatusBadRequest, Index: -1,
			Message: fmt.Sprintf("cannot read request body: %v", err)}
	}
}

// ---------------------------------------------------------------------------
// Documents: JSON, NDJSON, structured and batched CloudEvents

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

func (d *decodeState) decodeDocument(f bodyFormat) error {
	ce := f != formatJSON
	d.in, d.pos = bytes.TrimPrefix(d.body, utf8BOM), 0
	d.skipWS()
	if d.pos == len(d.in) {
		return badRequest(-1, "request body is empty; expected "+documentShape(f))
	}
	switch c := d.in[d.pos]; {
	case c == '{' && f != formatBatch:
		if err := d.parseEvent(ce); err != nil {
			return d.eventError(0, 0, err)
		}
	case c == '[' && f != formatStructured:
		if err := d.parseArray(ce); err != nil {
			return err
		}
	case valueKind(c) != "":
		return badRequest(-1, fmt.Sprintf("request body must be %s, got %s", documentShape(f), valueKind(c)))
	default:
		return d.syntaxRequestError(-1, d.pos, unexpectedByte(c))
	}
	d.skipWS()
	if d.pos != len(d.in) {
		return d.syntaxRequestError(-1, d.pos, "unexpected data after the top-level value")
	}
	return nil
}

func documentShape(f bodyFormat) string {
	switch f {
	case formatStructured:
		return "one JSON object (for an array, use " + mediaBatch + ")"
	case formatBatch:
		return "a JSON array of CloudEvents objects"
	default:
		return "a JSON object or an array of objects"
	}
}

func (d *decodeState) parseArray(ce bool) error {
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
			return badRequest(i, fmt.Sprintf("event %d: must be a JSON object, got %s", i, valueKind(c)))
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

func (d *decodeState) decodeNDJSON() error {
	rest := bytes.TrimPrefix(d.body, utf8BOM)
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
			return badRequest(idx, fmt.Sprintf("event %d (line %d): each line must be a JSON object, got %s", idx, line, valueKind(c)))
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
	time                           time.Time
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
	msg    string
	status int // 0: 400
}

func (e *fieldError) Error() string { return e.msg }

func fieldErrorf(format string, args ...any) error {
	return &fieldError{msg: fmt.Sprintf(format, args...)}
}

// parseEvent reads the object at d.pos (a '{') and appends it to d.events.
// ce requires the CloudEvents attributes.
func (d *decodeState) parseEvent(ce bool) error {
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
func (d *decodeState) scanKey() ([]byte, error) {
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
func (d *decodeState) parseField(r *rawEvent, f fieldSet) error {
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
		r.time, ok, err = d.timeField()
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
func (d *decodeState) stringField(name string) (sp span, ok bool, err error) {
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

func (d *decodeState) wrongType(name, want string, c byte) error {
	if k := valueKind(c); k != "" {
		return fieldErrorf("%q must be %s, got %s", name, want, k)
	}
	return &syntaxError{off: d.pos, msg: unexpectedByte(c)}
}

func (d *decodeState) timeField() (t time.Time, ok bool, err error) {
	switch c := d.in[d.pos]; c {
	case '"':
		if d.tmp, err = d.scanString(d.tmp[:0], true); err != nil {
			return time.Time{}, false, err
		}
		t, err := parseTime(d.tmp)
		if err != nil {
			return time.Time{}, false, fieldErrorf(`"time" must be an RFC 3339 timestamp, got %s`, quoteTrunc(string(d.tmp)))
		}
		return t, true, nil
	case 'n':
		return time.Time{}, false, d.literal("null")
	default:
		return time.Time{}, false, d.wrongType("time", "an RFC 3339 timestamp string", c)
	}
}

func (d *decodeState) specversionField() (ok bool, err error) {
	switch c := d.in[d.pos]; c {
	case '"':
		if d.tmp, err = d.scanString(d.tmp[:0], true); err != nil {
			return false, err
		}
		if string(d.tmp) != "1.0" {
			return false, fieldErrorf(`"specversion" must be "1.0", got %s`, quoteTrunc(string(d.tmp)))
		}
		return true, nil
	case 'n':
		return false, d.literal("null")
	default:
		return false, d.wrongType("specversion", `the string "1.0"`, c)
	}
}

// base64Field reads data_base64 into d.data as a JSON string of its text.
func (d *decodeState) base64Field() (sp span, ok bool, err error) {
	switch c := d.in[d.pos]; c {
	case '"':
		off := len(d.data)
		d.data = append(d.data, '"')
		if d.data, err = d.scanString(d.data, true); err != nil {
			return span{}, false, err
		}
		if !validBase64(d.data[off+1:]) {
			return span{}, false, fieldErrorf(`"data_base64" must be standard base64 with padding (RFC 4648 section 4), got %s`, quoteTrunc(string(d.data[off+1:])))
		}
		d.data = append(d.data, '"')
		if n := len(d.data) - off; d.maxEventBytes > 0 && n > d.maxEventBytes {
			return span{}, false, &fieldError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf(
				`"data_base64" is %d bytes; at most %d are stored per event (--max-event-bytes)`, n, d.maxEventBytes)}
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
func (d *decodeState) checkEvent(r *rawEvent, ce bool) error {
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
		if n := f.sp.end - f.sp.off; n > event.MaxFieldLength {
			return fieldErrorf(`%q must be at most %d bytes, got %d`, f.name, event.MaxFieldLength, n)
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
	if n > event.MaxIDLength {
		return fieldErrorf(`"id" must be at most %d bytes, got %d`, event.MaxIDLength, n)
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

// build turns the decoded events into event.Events. Their strings share one
// new string and their data one new byte slice; neither is pooled.
func (d *decodeState) build(opt *DecodeOptions) []event.Event {
	strs := string(d.str)
	var data []byte
	if len(d.data) > 0 {
		data = exactCopy(d.data)
	}
	evs := make([]event.Event, len(d.events))
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
		if r.present&(fieldData|fieldDataBase64) != 0 {
			// A full slice expression, so that appending to one event's
			// data cannot overwrite the next one's.
			e.Data = data[r.data.off:r.data.end:r.data.end]
		}
	}
	return evs
}

// ---------------------------------------------------------------------------
// CloudEvents binary mode

func (d *decodeState) decodeBinary(h http.Header, ct contentType, opt DecodeOptions) ([]event.Event, error) {
	e := event.Event{ReceivedAt: opt.Now, Time: opt.Now}
	spec, _, err := ceHeader(h, "Ce-Specversion")
	if err != nil {
		return nil, err
	}
	if spec != "1.0" {
		return nil, badRequest(0, fmt.Sprintf("event 0: header Ce-Specversion must be \"1.0\", got %s", quoteTrunc(spec)))
	}
	for _, a := range [...]struct {
		header string
		dst    *string
		req    bool
	}{{"Ce-Id", &e.ID, true}, {"Ce-Source", &e.Source, true}, {"Ce-Type", &e.Type, true}, {"Ce-Subject", &e.Subject, false}} {
		v, ok, err := ceHeader(h, a.header)
		if err != nil {
			return nil, err
		}
		if a.req && !ok {
			return nil, badRequest(0, fmt.Sprintf("event 0: header %s is required in CloudEvents binary mode", a.header))
		}
		if a.req && v == "" {
			return nil, badRequest(0, fmt.Sprintf("event 0: header %s must not be empty", a.header))
		}
		*a.dst = v
	}
	if len(e.ID) > event.MaxIDLength {
		return nil, badRequest(0, fmt.Sprintf("event 0: header Ce-Id must be at most %d bytes, got %d", event.MaxIDLength, len(e.ID)))
	}
	for _, f := range [...]struct{ header, v string }{{"Ce-Type", e.Type}, {"Ce-Source", e.Source}, {"Ce-Subject", e.Subject}} {
		if len(f.v) > event.MaxFieldLength {
			return nil, badRequest(0, fmt.Sprintf("event 0: header %s must be at most %d bytes, got %d", f.header, event.MaxFieldLength, len(f.v)))
		}
	}
	if v, ok, err := ceHeader(h, "Ce-Time"); err != nil {
		return nil, err
	} else if ok {
		t, err := parseTime([]byte(v))
		if err != nil {
			return nil, badRequest(0, fmt.Sprintf("event 0: header Ce-Time must be an RFC 3339 timestamp, got %s", quoteTrunc(v)))
		}
		e.Time = t
	}

	body := d.body
	if isJSONMedia(ct.media) {
		d.in, d.pos = bytes.TrimPrefix(body, utf8BOM), 0
		d.skipWS()
		start := d.pos
		if d.pos < len(d.in) {
			err := d.dataValue("the body")
			if err == nil {
				d.skipWS()
				if d.pos != len(d.in) {
					err = &syntaxError{off: d.pos, msg: "unexpected data after the JSON value"}
				}
			}
			if err != nil {
				re := badRequest(0, "")
				var se *syntaxError
				var fe *fieldError
				switch {
				case errors.As(err, &se) && !se.store:
					re.Message = fmt.Sprintf("event 0: the body is the data and must be JSON for Content-Type %s: %s", ct.media, se.describe(false))
				case errors.As(err, &se):
					re.Message = "event 0: the body is the data: " + se.describe(false)
				case errors.As(err, &fe):
					re.Message = "event 0: " + fe.msg
					if fe.status != 0 {
						re.Status = fe.status
					}
				default:
					return nil, err
				}
				return nil, re
			}
			end := len(bytes.TrimRight(d.in, jsonSpace))
			if v := d.in[start:end]; string(v) != "null" {
				e.Data = exactCopy(v)
			}
		}
	} else if len(body) > 0 {
		text := utf8.Valid(body) && bytes.IndexByte(body, 0) < 0
		n := base64.StdEncoding.EncodedLen(len(body)) + 2
		if text {
			n = jsonStringLen(body)
		}
		if d.maxEventBytes > 0 && n > d.maxEventBytes {
			return nil, &RequestError{Status: http.StatusRequestEntityTooLarge, Index: 0, Message: fmt.Sprintf(
				"event 0: the body becomes data of %d bytes (as a JSON string); at most %d are stored per event (--max-event-bytes)", n, d.maxEventBytes)}
		}
		if !d.reserved(int64(n)) {
			return nil, errBudget
		}
		if text {
			e.Data = appendJSONString(make([]byte, 0, n), body)
		} else {
			e.Data = appendBase64String(body)
		}
	}
	return []event.Event{e}, nil
}

const jsonSpace = " \t\r\n"

// exactCopy copies b into a slice without spare capacity (bytes.Clone may
// round up), so that appending to it never writes into shared memory.
func exactCopy(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}

// ceHeader reads and percent-decodes a ce-* header, name in canonical form (CloudEvents HTTP binding
// section 3.1.3.2). ok says whether it is present.
func ceHeader(h http.Header, name string) (v string, ok bool, err error) {
	vs := h[name]
	if len(vs) == 0 {
		return "", false, nil
	}
	if len(vs) > 1 {
		return "", false, badRequest(0, fmt.Sprintf("event 0: header %s is given %d times", name, len(vs)))
	}
	v = vs[0]
	if strings.IndexByte(v, '%') >= 0 {
		if v, err = url.PathUnescape(v); err != nil {
			return "", false, badRequest(0, fmt.Sprintf("event 0: header %s has bad percent-encoding: %v", name, err))
		}
	}
	if !utf8.ValidString(v) {
		return "", false, badRequest(0, fmt.Sprintf("event 0: header %s is not valid UTF-8 after percent-decoding", name))
	}
	if strings.IndexByte(v, 0) >= 0 {
		return "", false, badRequest(0, fmt.Sprintf("event 0: header %s contains a NUL character, which cannot be stored", name))
	}
	return v, true, nil
}

// jsonStringLen is the length of appendJSONString's output for s.
func jsonStringLen(s []byte) int {
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

// appendJSONString appends s, valid UTF-8, as a JSON string.
func appendJSONString(dst, s []byte) []byte {
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

// appendBase64String returns the JSON string of the standard base64 of b.
func appendBase64String(b []byte) []byte {
	out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(b))+2)
	out = append(out, '"')
	out = base64.StdEncoding.AppendEncode(out, b)
	return append(out, '"')
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

func (d *decodeState) eof() error {
	return &syntaxError{off: len(d.in), msg: "unexpected end of input"}
}

func (d *decodeState) skipWS() {
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
func (d *decodeState) colon() error {
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
func (d *decodeState) scanString(dst []byte, emit bool) ([]byte, error) {
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
				return dst, &syntaxError{off: i, msg: fmt.Sprintf("invalid escape %s in string", quoteTrunc(string(in[i:i+2])))}
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
func (d *decodeState) unicodeEscape(i int) (rune, int, error) {
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
func (d *decodeState) hex4(i int) (rune, error) {
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
			return 0, &syntaxError{off: i, msg: fmt.Sprintf("invalid escape %s in string", quoteTrunc(string(in[i:i+6])))}
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
func (d *decodeState) skipValue(depth int, name string) error {
	return d.value(depth, 0, name, false)
}

// dataValue checks the data value at d.pos, which is stored, against the
// rules every store keeps (see Decode) and moves past it. name is what it is
// called in messages: "data" or "the body".
func (d *decodeState) dataValue(name string) error {
	start := d.pos
	objs := 1 // Elasticsearch stores any other value inside an object
	if d.in[d.pos] == '{' {
		objs = 0
	}
	if err := d.value(0, objs, name, true); err != nil {
		return err
	}
	if n := d.pos - start; d.maxEventBytes > 0 && n > d.maxEventBytes {
		return &fieldError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf(
			"%s is %d bytes; at most %d are stored per event (--max-event-bytes)", name, n, d.maxEventBytes)}
	}
	return nil
}

// value checks the JSON value at d.pos and moves past it. depth counts the
// arrays and objects around it, objs the objects alone (what Elasticsearch's
// flattened field counts). data applies the rules of stored data: no key
// twice in one object, no \u0000, numbers within a float64, objects at most
// maxObjectDepth deep.
func (d *decodeState) value(depth, objs int, name string, data bool) error {
	if d.pos == len(d.in) {
		return d.eof()
	}
	if name == "" {
		name = "a field"
	}
	switch c := d.in[d.pos]; c {
	case '{', '[':
		if depth == maxDataDepth {
			return fieldErrorf("%s is nested more than %d levels deep", name, maxDataDepth)
		}
		if c == '{' && data {
			if objs == maxObjectDepth {
				return fieldErrorf("%s has objects nested more than %d deep, the most Elasticsearch's flattened field takes", name, maxObjectDepth)
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

func (d *decodeState) composite(open byte, depth, objs int, name string, data bool) error {
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
				d.kbuf = append(d.kbuf, key...)
				if n := len(d.kbuf) - off; n > maxKeyBytes {
					return fieldErrorf("%s has a key of %d bytes; at most %d are stored", name, n, maxKeyBytes)
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
					return fieldErrorf("%s has the key %s twice in one object; Elasticsearch refuses that, and PostgreSQL would keep only the last", name, quoteTrunc(string(k)))
				}
				d.dkeys, d.kbuf = d.dkeys[:keys], d.kbuf[:kbuf]
			}
			return nil
		default:
			return &syntaxError{off: d.pos, msg: fmt.Sprintf("%s; expected ',' or '%c'", unexpectedByte(c), close)}
		}
	}
}

// duplicateKey returns a key that keys (spans of d.kbuf) hold twice, or nil.
// It may reorder keys.
func (d *decodeState) duplicateKey(keys []span) []byte {
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
// most maxNumberLength characters long.
func checkNumber(num []byte, name string) error {
	if len(num) > maxNumberLength {
		return fieldErrorf("%s has a number of %d characters; at most %d are stored", name, len(num), maxNumberLength)
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
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		return fieldErrorf("%s has the number %s, too large for a float64 (at most about 1.8e308)", name, quoteTrunc(string(num)))
	}
	if f == 0 {
		mant := num
		if exp >= 0 {
			mant = num[:exp]
		}
		if bytes.IndexAny(mant, "123456789") >= 0 {
			return fieldErrorf("%s has the number %s, too close to zero for a float64 (at least about 4.9e-324)", name, quoteTrunc(string(num)))
		}
	}
	return nil
}

func (d *decodeState) literal(word string) error {
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
func (d *decodeState) skipNumber() error {
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

func badRequest(index int, msg string) *RequestError {
	return &RequestError{Status: http.StatusBadRequest, Index: index, Message: msg}
}

// syntaxRequestError is a syntax error that is not inside one event.
func (d *decodeState) syntaxRequestError(index, off int, msg string) *RequestError {
	return badRequest(index, fmt.Sprintf("invalid JSON at offset %d: %s", off, msg))
}

// eventError turns an error from parsing event idx into a RequestError. line
// is its NDJSON line (0: not NDJSON), and offsets are then columns.
func (d *decodeState) eventError(idx, line int, err error) error {
	where := fmt.Sprintf("event %d", idx)
	if line > 0 {
		where = fmt.Sprintf("event %d (line %d)", idx, line)
	}
	var se *syntaxError
	var fe *fieldError
	switch {
	case errors.As(err, &se):
		return badRequest(idx, where+": "+se.describe(line > 0))
	case errors.As(err, &fe):
		re := badRequest(idx, where+": "+fe.msg)
		if fe.status != 0 {
			re.Status = fe.status
		}
		return re
	default:
		return err // not the request's fault: making an id failed
	}
}

// quoteTrunc quotes s for a message, cut to a readable length.
func quoteTrunc(s string) string {
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

// parseTime parses an RFC 3339 timestamp exactly as time.Parse with
// time.RFC3339Nano does. The common UTC form is parsed here without
// allocating; anything else goes to time.Parse.
func parseTime(b []byte) (time.Time, error) {
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
