package console

import (
	"math"
	"sort"

	dto "github.com/prometheus/client_model/go"
)

// native is a Prometheus native histogram's counts by bucket index, so
// that two readings can be subtracted: the requests of one second.
type native struct {
	schema int32
	count  uint64 // observations in all
	zero   uint64
	counts map[int]uint64
}

// readNative decodes a histogram's positive buckets (durations are never
// negative); without native buckets it is empty.
func readNative(h *dto.Histogram) native {
	n := native{schema: h.GetSchema(), count: h.GetSampleCount(), zero: h.GetZeroCount(), counts: map[int]uint64{}}
	idx, count := 0, int64(0)
	deltas := h.GetPositiveDelta()
	d := 0
	for i, span := range h.GetPositiveSpan() {
		if i == 0 {
			idx = int(span.GetOffset())
		} else {
			idx += int(span.GetOffset())
		}
		for j := uint32(0); j < span.GetLength() && d < len(deltas); j++ {
			count += deltas[d]
			d++
			if count > 0 {
				n.counts[idx] = uint64(count)
			}
			idx++
		}
	}
	return n
}

// since is what was observed between prev and n.
func (n native) since(prev native) native {
	out := native{schema: n.schema, counts: map[int]uint64{}}
	if n.count < prev.count || n.schema > prev.schema || n.zero < prev.zero {
		return n // the histogram was reset: all it holds is new
	}
	if n.schema < prev.schema {
		// The library widened the buckets (too many of them): bring the
		// old counts to the new width, 2^d old buckets to one new.
		prev = prev.widen(n.schema)
	}
	out.zero = n.zero - prev.zero
	for i, c := range n.counts {
		if p := prev.counts[i]; c > p {
			out.counts[i] = c - p
		}
	}
	return out
}

// widen is n at a lower schema: bucket i becomes ceil(i / 2^d).
func (n native) widen(schema int32) native {
	out := native{schema: schema, count: n.count, zero: n.zero, counts: map[int]uint64{}}
	div := float64(int(1) << (n.schema - schema))
	for i, c := range n.counts {
		out.counts[int(math.Ceil(float64(i)/div))] += c
	}
	return out
}

func (n native) total() uint64 {
	t := n.zero
	for _, c := range n.counts {
		t += c
	}
	return t
}

// quantile estimates the q-quantile (0 < q < 1): the geometric middle of
// the bucket holding it, within the bucket factor (about 9% at schema 3).
func (n native) quantile(q float64) (float64, bool) {
	total := n.total()
	if total == 0 {
		return 0, false
	}
	rank := uint64(math.Ceil(q * float64(total)))
	if rank <= n.zero {
		return 0, true
	}
	seen := n.zero
	keys := make([]int, 0, len(n.counts))
	for k := range n.counts {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	step := math.Exp2(-float64(n.schema))
	for _, k := range keys {
		seen += n.counts[k]
		if seen >= rank {
			// Bucket k holds (base^(k-1), base^k], base = 2^(2^-schema).
			return math.Exp2((float64(k) - 0.5) * step), true
		}
	}
	return math.Exp2(float64(keys[len(keys)-1]) * step), true
}
