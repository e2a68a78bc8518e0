package sources

import (
	"strings"
	"testing"
	"time"
)

func TestPayloadEvent(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name, payload                  string
		wantType, wantSource, wantData string
		wantID                         string
		wantErr                        string
	}{
		{name: "plain JSON event", payload: `{"id":"e1","type":"order.created","data":{"n":1}}`,
			wantType: "order.created", wantSource: "redis://orders", wantData: `{"n":1}`, wantID: "e1"},
		{name: "CloudEvent with its own source", payload: `{"specversion":"1.0","id":"c1","source":"/shop","type":"ce.t","time":"2026-01-01T00:00:00Z","x-ext":1,"data":[1]}`,
			wantType: "ce.t", wantSource: "/shop", wantData: `[1]`, wantID: "c1"},
		{name: "object that is not an envelope becomes data", payload: `{"type":"click","x":3}`,
			wantType: "redis.message", wantSource: "redis://orders", wantData: `{"type":"click","x":3}`},
		{name: "array", payload: ` [1,2] `, wantType: "redis.message", wantSource: "redis://orders", wantData: `[1,2]`},
		{name: "number", payload: `42`, wantType: "redis.message", wantSource: "redis://orders", wantData: `42`},
		{name: "plain text", payload: `hello "world"`, wantType: "redis.message", wantSource: "redis://orders", wantData: `"hello \"world\""`},
		{name: "binary", payload: "\xff\xfe", wantType: "redis.message", wantSource: "redis://orders", wantData: `"//4="`},
		{name: "event with a bad time", payload: `{"type":"t","time":"yesterday"}`, wantErr: `"time"`},
		{name: "event with an empty type", payload: `{"specversion":"1.0","type":""}`, wantErr: `"type"`},
		{name: "event with a long id", payload: `{"type":"t","id":"` + strings.Repeat("x", 256) + `"}`, wantErr: `"id"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := payloadEvent("redis://orders", "", []byte(tt.payload), "redis.message", 1<<20, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type != tt.wantType || ev.Source != tt.wantSource || string(ev.Data) != tt.wantData {
				t.Fatalf("got type %q source %q data %s", ev.Type, ev.Source, ev.Data)
			}
			if tt.wantID != "" && ev.ID != tt.wantID || ev.ID == "" {
				t.Fatalf("id = %q, want %q", ev.ID, tt.wantID)
			}
			if !ev.ReceivedAt.Equal(now) {
				t.Fatalf("received_at = %v", ev.ReceivedAt)
			}
		})
	}
}
