//go:build jsontext

package event

// A prototype of the event parser on github.com/go-json-experiment/json's
// jsontext, to weigh it against the hand-written scanner (build with -tags
// jsontext). Only the NDJSON path uses it.

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/go-json-experiment/json/jsontext"
)

const useJSONText = true

type jtState struct {
	dec *jsontext.Decoder
	buf bytes.Buffer // parsed in place: jsontext reads a *bytes.Buffer without copying
}

var jtStates = make(chan *jtState, 64)

func getJT() *jtState {
	select {
	case s := <-jtStates:
		return s
	default:
		s := new(jtState)
		s.dec = jsontext.NewDecoder(&s.buf)
		return s
	}
}

func putJT(s *jtState) {
	select {
	case jtStates <- s:
	default:
	}
}

// parseEventJT parses the object at d.in[d.pos:] (the rest of the line).
func (d *Decoder) parseEventJT(ce bool) error {
	st := getJT()
	defer putJT(st)
	in := d.in[d.pos:]
	st.buf = *bytes.NewBuffer(in)
	st.dec.Reset(&st.buf)
	dec := st.dec
	fail := func(err error) error {
		var se *jsontext.SyntacticError
		if errors.As(err, &se) {
			return &syntaxError{off: d.pos + int(se.ByteOffset), msg: se.Err.Error()}
		}
		return &syntaxError{off: d.pos + int(dec.InputOffset()), msg: err.Error()}
	}
	if _, err := dec.ReadToken(); err != nil { // '{'
		return fail(err)
	}
	var r rawEvent
	var seen fieldSet
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue()
		if err != nil {
			return fail(err)
		}
		key := name[1 : len(name)-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			if d.key, err = jsontext.AppendUnquote(d.key[:0], name); err != nil {
				return fail(err)
			}
			key = d.key
		}
		f := lookupField(key)
		if f != 0 {
			if seen&f != 0 {
				return fieldErrorf("%q is given twice", key)
			}
			seen |= f
		}
		switch f {
		case fieldID, fieldType, fieldSource, fieldSubject, fieldTime, fieldSpecversion, fieldDataBase64:
			v, err := dec.ReadValue()
			if err != nil {
				return fail(err)
			}
			if v.Kind() == 'n' {
				continue
			}
			if v.Kind() != '"' {
				return fieldErrorf("%q must be a string, got %s", key, valueKind(v[0]))
			}
			off := len(d.str)
			if d.str, err = jsontext.AppendUnquote(d.str, v); err != nil {
				return fail(err)
			}
			if bytes.IndexByte(d.str[off:], 0) >= 0 {
				return &syntaxError{off: d.pos, msg: `\u0000 (NUL) in a string, which PostgreSQL cannot store`, store: true}
			}
			sp := span{off, len(d.str)}
			switch f {
			case fieldID:
				r.id = sp
			case fieldType:
				r.typ = sp
			case fieldSource:
				r.source = sp
			case fieldSubject:
				r.subject = sp
			case fieldTime:
				t, err := ParseTime(d.str[off:])
				if err != nil {
					return fieldErrorf(`"time" must be an RFC 3339 timestamp, got %s`, Quote(string(d.str[off:])))
				}
				r.time = t
				d.str = d.str[:off]
			case fieldSpecversion:
				if string(d.str[off:]) != "1.0" {
					return fieldErrorf(`"specversion" must be "1.0"`)
				}
				d.str = d.str[:off]
			case fieldDataBase64:
				d.str = d.str[:off]
				doff := len(d.data)
				d.data = append(d.data, v...)
				r.data = span{doff, len(d.data)}
			}
			r.present |= f
		case fieldData:
			start := int(dec.InputOffset())
			for start < len(in) && (in[start] == ' ' || in[start] == ':' || in[start] == '\t') {
				start++
			}
			if dec.PeekKind() == 'n' {
				dec.SkipValue()
				continue
			}
			if err := d.walkDataJT(dec); err != nil {
				return err
			}
			end := int(dec.InputOffset())
			if n := end - start; d.opt.MaxEventBytes > 0 && n > d.opt.MaxEventBytes {
				return &fieldError{tooLarge: true, msg: fmt.Sprintf(`"data" is %d bytes`, n)}
			}
			off := len(d.data)
			d.data = append(d.data, in[start:end]...)
			r.data = span{off, len(d.data)}
			r.present |= f
		default:
			if err := dec.SkipValue(); err != nil {
				return fail(err)
			}
		}
	}
	if _, err := dec.ReadToken(); err != nil { // '}'
		return fail(err)
	}
	d.pos += int(dec.InputOffset())
	if err := d.checkEvent(&r, ce); err != nil {
		return err
	}
	d.events = append(d.events, r)
	return nil
}

// walkDataJT checks the data value at the decoder's position against the
// stored data's rules, token by token; jsontext checks syntax, UTF-8 and
// duplicate names.
func (d *Decoder) walkDataJT(dec *jsontext.Decoder) error {
	base := dec.StackDepth()
	objs := 1
	if dec.PeekKind() == '{' {
		objs = 0
	}
	var stack [MaxDataDepth + 1]bool // objects
	depth := 0
	for {
		inObj := depth > 0 && stack[depth-1]
		atName := false
		if inObj {
			_, n := dec.StackIndex(dec.StackDepth())
			atName = n%2 == 0
		}
		switch k := dec.PeekKind(); k {
		case '{', '[':
			if depth == MaxDataDepth {
				return fieldErrorf(`"data" is nested more than %d levels deep`, MaxDataDepth)
			}
			if k == '{' {
				objs++
				if objs > MaxObjectDepth {
					return fieldErrorf(`"data" has objects nested more than %d deep`, MaxObjectDepth)
				}
			}
			if _, err := dec.ReadToken(); err != nil {
				return &syntaxError{off: int(dec.InputOffset()), msg: err.Error()}
			}
			stack[depth] = k == '{'
			depth++
			continue
		case '}', ']':
			if _, err := dec.ReadToken(); err != nil {
				return &syntaxError{off: int(dec.InputOffset()), msg: err.Error()}
			}
			depth--
			if k == '}' {
				objs--
			}
		default:
			v, err := dec.ReadValue()
			if err != nil {
				return &syntaxError{off: int(dec.InputOffset()), msg: err.Error()}
			}
			switch v.Kind() {
			case '"':
				if bytes.Contains(v, []byte(`\u0000`)) && hasNULEscape(v) {
					return &syntaxError{off: int(dec.InputOffset()), msg: `\u0000 (NUL) in a string, which PostgreSQL cannot store`, store: true}
				}
				if atName && len(v)-2 > MaxKeyBytes {
					return fieldErrorf(`"data" has a key of %d bytes`, len(v)-2)
				}
			case '0':
				if err := checkNumber(v, `"data"`); err != nil {
					return err
				}
			}
		}
		if dec.StackDepth() == base {
			return nil
		}
	}
}

// hasNULEscape says whether a JSON string holds \u0000 (an odd number of
// backslashes before it).
func hasNULEscape(v []byte) bool {
	for i := 0; ; {
		j := bytes.Index(v[i:], []byte(`u0000`))
		if j < 0 {
			return false
		}
		j += i
		n := 0
		for k := j - 1; k >= 0 && v[k] == '\\'; k-- {
			n++
		}
		if n%2 == 1 {
			return true
		}
		i = j + 1
	}
}
