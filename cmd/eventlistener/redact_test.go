package main

import (
	"strings"
	"testing"
)

func TestRedactNeverPrintsASecret(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://app:s3cret@db/events", "postgres://app:xxxxx@db/events"},
		{"postgres://app:s3cr%t@db/events", "postgres://xxxxx@db/events"}, // does not parse
		{"postgres://app:p@ss@word@db/events", "postgres://app:xxxxx@db/events"},
		{"postgres://db/events?user=app&password=s3cret", "postgres://db/events?password=xxxxx&user=app"},
		{"host=db user=app password=s3cret dbname=events", "host=db user=app password=xxxxx dbname=events"},
		{"host=db password='s3 cret' dbname=events", "host=db password=xxxxx dbname=events"},
		{"host=db PASSWORD = s3cret", "host=db PASSWORD = xxxxx"},
		{"redis://:s3cret@cache:6379/0", "redis://:xxxxx@cache:6379/0"},
		{"http://es:9200", "http://es:9200"},
		{"postgres://db/events?password=s3%cret&user=app", "postgres://db/events?password=xxxxx&user=app"},
		{"postgres://app:1234/s3cret@db/events", "postgres://xxxxx@db/events"},
		{"https://elastic:s3cret@es:9200", "https://elastic:xxxxx@es:9200"},
	} {
		got := redact(tc.in)
		if strings.Contains(got, "s3") || strings.Contains(got, "ss@word") {
			t.Errorf("redact(%q) = %q: the secret shows", tc.in, got)
		}
		if got != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
