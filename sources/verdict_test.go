package sources_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"eventlistener/api"
	"eventlistener/sources"
)

// The same event gets the same verdict over HTTP and as a Redis message:
// both go through the one envelope decoder.
func TestHTTPAndRedisGiveTheSameVerdict(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	payloads := []string{
		`{"id":"ok","type":"t","data":{"a":{"a":1}}}`,
		`{"type":"t","specversion":"1.0","source":"/s","id":"c1","data":[1e308]}`,
		`{"type":"t","data":{"a":1,"a":2}}`,
		`{"type":"t","type":"u"}`,
		`{"type":"t","time":"yesterday"}`,
		`{"type":"t","data":{"k":"a\u0000"}}`,
		`{"type":"a\u0000"}`,
		`{"type":"t","data":[1e400]}`,
		`{"type":"t","data":[1e-400]}`,
		`{"type":"t","data":` + strings.Repeat(`{"k":`, 21) + "1" + strings.Repeat("}", 21) + `}`,
		`{"type":"t","data":{"` + strings.Repeat("k", 1001) + `":1}}`,
		`{"type":"t","data":"\ud800"}`,
		"{\"type\":\"t\",\"data\":\"\xff\"}",
		`{"type":"t","id":""}`,
		`{"type":"t","id":"` + strings.Repeat("i", 256) + `"}`,
		`{"type":"` + strings.Repeat("t", 1025) + `"}`,
		`{"type":""}`,
		`{"type":"t","specversion":"0.3"}`,
		`{"type":"t","data":{"x":1},"data_base64":"aGk="}`,
		`{"type":"t","data_base64":"not base64"}`,
		`{"type":"t","data":"` + strings.Repeat("d", 200) + `"}`, // over the limit below
	}
	const maxEventBytes = 100
	for _, p := range payloads {
		evs, herr := api.Decode(http.Header{"Content-Type": {"application/json"}}, strings.NewReader(p),
			api.DecodeOptions{Now: now, DefaultSource: "redis://c", MaxEventBytes: maxEventBytes})
		ev, rerr := sources.PayloadEvent("redis://c", "", []byte(p), "redis.message", maxEventBytes, now)
		name := p
		if len(name) > 60 {
			name = name[:60] + "..."
		}
		switch {
		case (herr == nil) != (rerr == nil):
			t.Errorf("%s: HTTP says %v, Redis says %v", name, herr, rerr)
		case herr != nil:
			// The same message, but for HTTP's place of the event.
			if !strings.Contains(herr.Error(), rerr.Error()) && !strings.Contains(rerr.Error(), strings.TrimPrefix(herr.Error(), "event 0: ")) {
				t.Errorf("%s: HTTP says %q, Redis says %q", name, herr, rerr)
			}
		case evs[0].Type != ev.Type || string(evs[0].Data) != string(ev.Data) || evs[0].Source != ev.Source ||
			!evs[0].Time.Equal(ev.Time) || (evs[0].ID == "ok") != (ev.ID == "ok"):
			t.Errorf("%s: HTTP makes %+v, Redis makes %+v", name, evs[0], ev)
		}
	}
}
