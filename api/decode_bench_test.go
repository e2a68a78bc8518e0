package api

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// benchEvent is a realistic event of about 200 bytes.
func benchEvent(i int) string {
	return fmt.Sprintf(`{"id":"0190a5f2-7c1e-7d3a-9b2f-%012d","type":"order.created","source":"/shop/checkout","subject":"order-%d",`+
		`"time":"2025-01-02T03:04:05.%03dZ","data":{"order_id":%d,"amount":42.50,"currency":"EUR","items":3,"customer":"c-%d"}}`,
		i, i, i%1000, i, i%977)
}

func benchNDJSON(n int) []byte {
	var b strings.Builder
	for i := range n {
		b.WriteString(benchEvent(i))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

func benchArray(n int) []byte {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(benchEvent(i))
	}
	b.WriteByte(']')
	return []byte(b.String())
}

func runDecodeBench(b *testing.B, h http.Header, body []byte, decodedBytes, events int) {
	b.Helper()
	opt := testOptions()
	opt.MaxBytes = 4 << 20
	b.ReportAllocs()
	b.SetBytes(int64(decodedBytes))
	r := bytes.NewReader(body)
	for b.Loop() {
		r.Reset(body)
		evs, err := Decode(h, r, opt)
		if err != nil || len(evs) != events {
			b.Fatalf("%d events, %v", len(evs), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
}

func BenchmarkDecodeNDJSON1000(b *testing.B) {
	body := benchNDJSON(1000)
	runDecodeBench(b, hdr("Content-Type", "application/x-ndjson"), body, len(body), 1000)
}

func BenchmarkDecodeSingle(b *testing.B) {
	body := []byte(benchEvent(1))
	runDecodeBench(b, hdr("Content-Type", "application/json"), body, len(body), 1)
}

// BenchmarkDecodeSingleNoID is the single post that gets a generated id.
func BenchmarkDecodeSingleNoID(b *testing.B) {
	body := []byte(`{"type":"order.created","source":"/shop/checkout","data":{"order_id":1,"amount":42.50}}`)
	runDecodeBench(b, hdr("Content-Type", "application/json"), body, len(body), 1)
}

func BenchmarkDecodeArray1000(b *testing.B) {
	body := benchArray(1000)
	runDecodeBench(b, hdr("Content-Type", "application/json"), body, len(body), 1000)
}

// BenchmarkDecodeGzipNDJSON1000 sets bytes to the decompressed size, so its
// MB/s compares with BenchmarkDecodeNDJSON1000.
func BenchmarkDecodeGzipNDJSON1000(b *testing.B) {
	raw := benchNDJSON(1000)
	runDecodeBench(b, hdr("Content-Type", "application/x-ndjson", "Content-Encoding", "gzip"), gzipBytes(b, raw), len(raw), 1000)
}

func BenchmarkDecodeBinary(b *testing.B) {
	body := []byte(`{"order_id":12345,"amount":42.50,"currency":"EUR","items":3}`)
	h := hdr("Content-Type", "application/json", "Ce-Specversion", "1.0", "Ce-Id", "0190a5f2-7c1e-7d3a-9b2f-000000000001",
		"Ce-Type", "order.created", "Ce-Source", "/shop/checkout", "Ce-Time", "2025-01-02T03:04:05Z")
	runDecodeBench(b, h, body, len(body), 1)
}
