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
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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

	d := bodyStatePool.Get().(*bodyState)
	defer d.release()
	d.reserve = opt.Reserve
	if rerr := d.readBody(body, gz, opt.MaxBytes); rerr != nil {
		return nil, rerr
	}

	if ct.format == formatBinary {
		return d.decodeBinary(h, ct, opt)
	}
	dec := event.NewDecoder(event.DecodeOptions{Now: opt.Now, DefaultSource: opt.DefaultSource,
		MaxEvents: opt.MaxEvents, MaxEventBytes: opt.MaxEventBytes, Reserve: opt.Reserve})
	defer dec.Release()
	var err error
	switch ct.format {
	case formatNDJSON:
		err = dec.NDJSON(d.body)
	case formatStructured:
		err = dec.Document(d.body, event.ShapeStructured)
	case formatBatch:
		err = dec.Document(d.body, event.ShapeBatch)
	default:
		err = dec.Document(d.body, event.ShapeJSON)
	}
	if err != nil {
		return nil, requestError(err)
	}
	return dec.Events(), nil
}

func badRequest(index int, msg string) *RequestError {
	return &RequestError{Status: http.StatusBadRequest, Index: index, Message: msg}
}

// requestError gives an error of the event decoder its HTTP status: 413 for
// a limit, 503 when the decode budget is spent, else 400.
func requestError(err error) error {
	var de *event.DecodeError
	if !errors.As(err, &de) {
		return err // not the request's fault: making an id failed
	}
	switch {
	case de.Busy:
		return errBudget
	case de.TooLarge:
		return &RequestError{Status: http.StatusRequestEntityTooLarge, Index: de.Index, Message: de.Message}
	}
	return &RequestError{Status: http.StatusBadRequest, Index: de.Index, Message: de.Message}
}

// defaultDecodeMaxBytes is the body limit when DecodeOptions.MaxBytes is unset.
const defaultDecodeMaxBytes = 1 << 20

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
					Message: fmt.Sprintf("cannot parse Content-Type %s: %v; accepted: %s", event.Quote(raw), err, acceptedContentTypes)}
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
				Message: fmt.Sprintf("unsupported charset %s in Content-Type; JSON must be UTF-8", event.Quote(cs))}
		}
	}
	return contentType{format: f, media: media}, nil
}

func unsupportedMedia(media, hint string) *RequestError {
	return &RequestError{Status: http.StatusUnsupportedMediaType, Index: -1,
		Message: fmt.Sprintf("unsupported Content-Type %s; %s", event.Quote(media), hint)}
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
						event.Quote(strings.Join(h["Content-Encoding"], ", ")))}
			}
		}
	}
	return gz, nil
}

// ---------------------------------------------------------------------------
// Reading the body

// bodyState is one request's body and what reads it. It is pooled: nothing
// in it may escape into the returned events.
type bodyState struct {
	body      []byte // the whole (decompressed) body
	wire      wireLimiter
	wireLimit int64
	br        *bufio.Reader
	reserve   func(n int64) bool
}

// errBudget refuses a request the decode budget has no room for.
var errBudget = &RequestError{Status: http.StatusServiceUnavailable, Index: -1,
	Message: "the engine is decoding as many requests as its memory budget allows (--decode-budget); retry shortly"}

func (d *bodyState) reserved(n int64) bool { return d.reserve == nil || d.reserve(n) }

var bodyStatePool = sync.Pool{New: func() any { return new(bodyState) }}

var gzipReaderPool sync.Pool // of *gzip.Reader

func (d *bodyState) release() {
	if cap(d.body) > maxPooledBytes {
		d.body = nil
	}
	d.body = d.body[:0]
	d.wire = wireLimiter{}
	d.reserve = nil
	if d.br != nil {
		d.br.Reset(nil)
	}
	bodyStatePool.Put(d)
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
func (d *bodyState) readBody(body io.Reader, gz bool, maxBytes int64) *RequestError {
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

func (d *bodyState) readError(err error, gz bool) *RequestError {
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
// CloudEvents binary mode

func (d *bodyState) decodeBinary(h http.Header, ct contentType, opt DecodeOptions) ([]event.Event, error) {
	e := event.Event{ReceivedAt: opt.Now, Time: opt.Now}
	spec, _, err := ceHeader(h, "Ce-Specversion")
	if err != nil {
		return nil, err
	}
	if spec != "1.0" {
		return nil, badRequest(0, fmt.Sprintf("event 0: header Ce-Specversion must be \"1.0\", got %s", event.Quote(spec)))
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
		t, err := event.ParseTime([]byte(v))
		if err != nil {
			return nil, badRequest(0, fmt.Sprintf("event 0: header Ce-Time must be an RFC 3339 timestamp, got %s", event.Quote(v)))
		}
		e.Time = t
	}

	body := d.body
	if isJSONMedia(ct.media) {
		dec := event.NewDecoder(event.DecodeOptions{MaxEventBytes: opt.MaxEventBytes})
		defer dec.Release()
		data, err := dec.Data(body, "the body")
		var de *event.DecodeError
		if errors.As(err, &de) && de.Syntax {
			return nil, badRequest(0, fmt.Sprintf("event 0: the body is the data and must be JSON for Content-Type %s: %s", ct.media, de.Message))
		}
		if err != nil {
			re := requestError(err).(*RequestError)
			re.Message = "event 0: " + re.Message
			return nil, re
		}
		e.Data = data
	} else if len(body) > 0 {
		text := utf8.Valid(body) && bytes.IndexByte(body, 0) < 0
		n := base64.StdEncoding.EncodedLen(len(body)) + 2
		if text {
			n = event.JSONStringLen(body)
		}
		if opt.MaxEventBytes > 0 && n > opt.MaxEventBytes {
			return nil, &RequestError{Status: http.StatusRequestEntityTooLarge, Index: 0, Message: fmt.Sprintf(
				"event 0: the body becomes data of %d bytes (as a JSON string); at most %d are stored per event (--max-event-bytes)", n, opt.MaxEventBytes)}
		}
		if !d.reserved(int64(n)) {
			return nil, errBudget
		}
		if text {
			e.Data = event.AppendJSONString(make([]byte, 0, n), body)
		} else {
			e.Data = appendBase64String(body)
		}
	}
	return []event.Event{e}, nil
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

// appendBase64String returns the JSON string of the standard base64 of b.
func appendBase64String(b []byte) []byte {
	out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(b))+2)
	out = append(out, '"')
	out = base64.StdEncoding.AppendEncode(out, b)
	return append(out, '"')
}
