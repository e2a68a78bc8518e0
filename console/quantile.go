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
	zero   uint64
	counts map[int]uint64
}

// readNative decodes a histogram's positive buckets (durations are never
// negative); without native buckets it is empty.
func readNative(h *dto.Histogram) native {
	n := native{schema: h.GetSchema(), zero: h.GetZeroCount(), counts: map[int]uint64{}}
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
	if prev.schema != n.schema || n.zero < prev.zero {
		return n // the histogram was reset: take all of it
	}
	out.zero = n.zero - prev.zero
	for i, c := range n.counts {
		if p := prev.counts[i]; c > p {
			out.counts[i] = c - p
		}
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
