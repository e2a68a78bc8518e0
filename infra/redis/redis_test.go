package redis

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string // "" means valid
	}{
		{"single node", Options{URL: "redis://127.0.0.1:6379/0"}, ""},
		{"sentinel", Options{Sentinels: []string{"127.0.0.1:26379"}, MasterName: "mymaster"}, ""},
		{"nothing", Options{}, ""},
		{"both", Options{URL: "redis://x:1", Sentinels: []string{"a:1"}, MasterName: "m"}, "exclude each other"},
		{"bad url", Options{URL: "http://x"}, "--redis-url"},
		{"sentinel without master name", Options{Sentinels: []string{"a:1"}}, "--redis-master-name is required"},
		{"sentinel address without port", Options{Sentinels: []string{"a"}, MasterName: "m"}, "not host:port"},
		{"master name alone", Options{MasterName: "m"}, "needs --redis-sentinels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
