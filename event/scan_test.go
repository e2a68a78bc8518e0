package event

import (
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	for _, s := range []string{
		"2024-02-29T23:59:59Z", "2023-02-29T00:00:00Z", "2023-04-31T00:00:00Z", "1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2024-01-01T00:00:00.1Z", "2024-01-01T00:00:00.1234567891Z",
		"2024-01-01T24:00:00Z", "2024-01-01T23:60:00Z", "2024-01-01T23:59:60Z", "2024-01-01T00:00:00.Z", "2024-01-01t00:00:00z",
		"2024-01-01T00:00:00+01:00", "2024-01-01T00:00:00-00:00", "2024-01-01 00:00:00Z", "2024-1-01T00:00:00Z", "",
	} {
		want, wantErr := time.Parse(time.RFC3339Nano, s)
		got, err := ParseTime([]byte(s))
		if (err != nil) != (wantErr != nil) || !got.Equal(want) || got.Location().String() != want.Location().String() {
			t.Errorf("ParseTime(%q) = %v, %v; time.Parse gives %v, %v", s, got, err, want, wantErr)
		}
	}
	if testing.AllocsPerRun(100, func() { ParseTime([]byte("2024-05-06T07:08:09.123Z")) }) != 0 {
		t.Errorf("parsing a UTC time allocates")
	}
}

func TestHasSpecialByte(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			w := []byte("aaaaaaaa")
			w[pos] = byte(c)
			x := uint64(0)
			for i := 7; i >= 0; i-- {
				x = x<<8 | uint64(w[i])
			}
			if got, want := hasSpecialByte(x), !plainStringByte[c]; got != want {
				t.Errorf("byte %#02x at %d: hasSpecialByte %v, want %v", c, pos, got, want)
			}
		}
	}
}

// FuzzParseTime checks that the fast path for UTC timestamps agrees with
// time.Parse on everything it accepts.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2024-02-29T23:59:59Z", "2023-02-29T00:00:00Z", "0000-01-01T00:00:00.000000001Z",
		"9999-12-31T23:59:59.999999999Z", "2024-01-01T00:00:00.1Z", "2024-01-01T00:00:00+01:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseRFC3339UTC([]byte(s))
		want, err := time.Parse(time.RFC3339Nano, s)
		if ok && (err != nil || got != want) {
			t.Fatalf("parseRFC3339UTC(%q) = %v; time.Parse: %v, %v", s, got, want, err)
		}
		p, perr := ParseTime([]byte(s))
		pn, po := p.Zone()
		wn, wo := want.Zone()
		if (perr == nil) != (err == nil) || !p.Equal(want) || pn != wn || po != wo {
			t.Fatalf("ParseTime(%q) = %v, %v; time.Parse: %v, %v", s, p, perr, want, err)
		}
	})
}
