package postgres

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"eventlistener/sinks"
)

// A server, proxy or pooler may answer a code that is short, empty or
// unknown: classifying it must not panic, and it is not taken for a known
// class.
func TestOddSQLSTATEsDoNotPanic(t *testing.T) {
	for _, code := range []string{"", "2", "22", "2200", "ZZZZZ", "220000"} {
		err := &pgconn.PgError{Code: code, Where: "COPY events, line 1"}
		if _, ok := rejectedRow(err, 1); ok {
			t.Errorf("code %q: taken as a rejected row", code)
		}
		if c := classify(err); sinks.Retryable(c) || !errors.As(c, new(*pgconn.PgError)) {
			t.Errorf("code %q: classified %v", code, c)
		}
	}
	if !sinks.Retryable(classify(&pgconn.PgError{Code: "08006"})) {
		t.Error("08006 (connection failure) is not retryable")
	}
}
