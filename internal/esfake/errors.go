package esfake

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// esError is an Elasticsearch exception as it appears in a response body:
// {"type":..,"reason":..,<metadata>,"caused_by":{..}}.
type esError struct {
	Type     string
	Reason   string
	Status   int
	Meta     obj // extra fields such as index_uuid, shard, index
	CausedBy *esError
}

func newErr(status int, typ, reason string, args ...any) *esError {
	if len(args) > 0 {
		reason = fmt.Sprintf(reason, args...)
	}
	return &esError{Type: typ, Reason: reason, Status: status}
}

func (e *esError) cause(typ, reason string) *esError {
	e.CausedBy = &esError{Type: typ, Reason: reason}
	return e
}

func (e *esError) with(key string, val any) *esError {
	e.Meta = append(e.Meta, kv{key, val})
	return e
}

// shardMeta adds the metadata ES attaches to exceptions raised on a shard.
func (e *esError) shardMeta(ix *index) *esError {
	return e.with("index_uuid", ix.uuid).with("shard", "0").with("index", ix.name)
}

func (e *esError) body() obj {
	o := obj{{"type", e.Type}, {"reason", e.Reason}}
	o = append(o, e.Meta...)
	if e.CausedBy != nil {
		o = append(o, kv{"caused_by", e.CausedBy.body()})
	}
	return o
}

// response is the whole-request error body:
// {"error":{"root_cause":[..],"type":..,"reason":..},"status":N}.
func (e *esError) response() obj {
	root := obj{{"type", e.Type}, {"reason", e.Reason}}
	root = append(root, e.Meta...)
	b := obj{{"root_cause", []any{root}}}
	b = append(b, e.body()...)
	return obj{{"error", b}, {"status", e.Status}}
}

func indexNotFound(name string) *esError {
	return newErr(404, "index_not_found_exception", "no such index [%s]", name).
		with("resource.type", "index_or_alias").with("resource.id", name).
		with("index_uuid", "_na_").with("index", name)
}

// kv and obj give JSON objects whose keys keep their order, so responses
// read like the real ones.
type kv struct {
	Key string
	Val any
}

type obj []kv

func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := marshal(f.Key)
		b.Write(k)
		b.WriteByte(':')
		v, err := marshal(f.Val)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshal encodes JSON as ES writes it: without escaping <, > and &.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
