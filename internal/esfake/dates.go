package esfake

import (
	"strconv"
	"strings"
	"time"
)

// dateParser parses one date format; ok is false when the text does not fit.
type dateParser func(s string) (t time.Time, ok bool)

const (
	defaultDateFormat      = "strict_date_optional_time||epoch_millis"
	defaultDateNanosFormat = "strict_date_optional_time_nanos||epoch_millis"
)

// dateFormats compiles a format spec such as
// "strict_date_optional_time||epoch_millis". Named formats and simple Java
// patterns (yyyy MM dd HH mm ss S Z X and literals) are understood; a
// pattern using other letters accepts any value, since the fake cannot
// judge it.
func dateFormats(spec string) ([]dateParser, error) {
	var out []dateParser
	for _, part := range strings.Split(spec, "||") {
		part = strings.TrimSpace(part)
		if p := namedDateParser(part); p != nil {
			out = append(out, p)
			continue
		}
		out = append(out, javaPatternParser(part))
	}
	return out, nil
}

func namedDateParser(name string) dateParser {
	iso := func(lenient bool, check func(isoParts) bool) dateParser {
		return func(s string) (time.Time, bool) {
			t, parts, ok := parseISO(s, lenient)
			if !ok || (check != nil && !check(parts)) {
				return time.Time{}, false
			}
			return t, true
		}
	}
	fullTime := func(frac bool) func(isoParts) bool {
		return func(p isoParts) bool { return p.day && p.second && p.zone && p.frac == frac }
	}
	switch name {
	case "strict_date_optional_time", "strict_date_optional_time_nanos":
		return iso(false, nil)
	case "date_optional_time", "iso8601":
		return iso(true, nil)
	case "strict_date_time":
		return iso(false, fullTime(true))
	case "date_time":
		return iso(true, fullTime(true))
	case "strict_date_time_no_millis":
		return iso(false, fullTime(false))
	case "date_time_no_millis":
		return iso(true, fullTime(false))
	case "strict_date", "date":
		return iso(name == "date", func(p isoParts) bool { return p.day && !p.time })
	case "epoch_millis":
		return epochParser(1e6)
	case "epoch_second":
		return epochParser(1e9)
	}
	return nil
}

func epochParser(nanosPerUnit float64) dateParser {
	return func(s string) (time.Time, bool) {
		intPart, frac, hasFrac := strings.Cut(s, ".")
		digits := strings.TrimPrefix(intPart, "-")
		if digits == "" || !allDigits(digits) || (hasFrac && (frac == "" || !allDigits(frac))) {
			return time.Time{}, false
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return time.Time{}, false
		}
		ns := f * nanosPerUnit
		if ns > 9e24 || ns < -9e24 {
			return time.Time{}, false
		}
		sec := int64(f * nanosPerUnit / 1e9)
		rem := int64(ns - float64(sec)*1e9)
		return time.Unix(sec, rem).UTC(), true
	}
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

type isoParts struct {
	month, day, time, minute, second, frac, zone bool
}

// parseISO reads yyyy[-MM[-dd]][THH[:mm[:ss[.fraction]]][zone]], the shape
// of strict_date_optional_time. lenient allows fewer digits in each field,
// as date_optional_time does.
func parseISO(s string, lenient bool) (time.Time, isoParts, bool) {
	var p isoParts
	i := 0
	num := func(min, max int) (int, bool) {
		j := i
		for j < len(s) && j-i < max && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j-i < min {
			return 0, false
		}
		n, _ := strconv.Atoi(s[i:j])
		i = j
		return n, true
	}
	digits := func(n int) (int, bool) {
		if lenient {
			return num(1, n)
		}
		return num(n, n)
	}
	yearMax := 4
	if lenient {
		yearMax = 9
	}
	year, ok := num(4, yearMax)
	if lenient && !ok {
		year, ok = num(1, yearMax)
	}
	if !ok {
		return time.Time{}, p, false
	}
	month, day, hour, minute, sec, nanos := 1, 1, 0, 0, 0, 0
	loc := time.UTC
	if i < len(s) && s[i] == '-' {
		i++
		if month, ok = digits(2); !ok {
			return time.Time{}, p, false
		}
		p.month = true
		if i < len(s) && s[i] == '-' {
			i++
			if day, ok = digits(2); !ok {
				return time.Time{}, p, false
			}
			p.day = true
		}
	}
	if i < len(s) && s[i] == 'T' && p.day {
		i++
		p.time = true
		if hour, ok = digits(2); !ok {
			return time.Time{}, p, false
		}
		if i < len(s) && s[i] == ':' {
			i++
			if minute, ok = digits(2); !ok {
				return time.Time{}, p, false
			}
			p.minute = true
			if i < len(s) && s[i] == ':' {
				i++
				if sec, ok = digits(2); !ok {
					return time.Time{}, p, false
				}
				p.second = true
				if i < len(s) && (s[i] == '.' || s[i] == ',') {
					i++
					start := i
					for i < len(s) && s[i] >= '0' && s[i] <= '9' && i-start < 9 {
						i++
					}
					if i == start {
						return time.Time{}, p, false
					}
					frac := s[start:i] + strings.Repeat("0", 9-(i-start))
					nanos, _ = strconv.Atoi(frac)
					p.frac = true
				}
			}
		}
		if i < len(s) {
			z, n, ok := parseOffset(s[i:])
			if !ok {
				return time.Time{}, p, false
			}
			loc = z
			i += n
			p.zone = true
		}
	}
	if i != len(s) {
		return time.Time{}, p, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, loc)
	if t.Year() != year || int(t.Month()) != month || t.Day() != day || t.Hour() != hour || t.Minute() != minute || t.Second() != sec {
		return time.Time{}, p, false
	}
	return t.UTC(), p, true
}

// parseOffset reads Z, +HH, +HHmm or +HH:mm at the start of s.
func parseOffset(s string) (*time.Location, int, bool) {
	if s == "" {
		return nil, 0, false
	}
	if s[0] == 'Z' {
		return time.UTC, 1, true
	}
	if s[0] != '+' && s[0] != '-' {
		return nil, 0, false
	}
	sign := 1
	if s[0] == '-' {
		sign = -1
	}
	i := 1
	if len(s) < 3 || !allDigits(s[1:3]) {
		return nil, 0, false
	}
	hh, _ := strconv.Atoi(s[1:3])
	i = 3
	mm := 0
	if i < len(s) && s[i] == ':' {
		if len(s) < i+3 || !allDigits(s[i+1:i+3]) {
			return nil, 0, false
		}
		mm, _ = strconv.Atoi(s[i+1 : i+3])
		i += 3
	} else if len(s) >= i+2 && allDigits(s[i:i+2]) {
		mm, _ = strconv.Atoi(s[i : i+2])
		i += 2
	}
	if hh > 18 || mm > 59 {
		return nil, 0, false
	}
	return time.FixedZone("", sign*(hh*3600+mm*60)), i, true
}

// javaPatternParser understands the common letters of Java date patterns.
// A trailing zone (Z, X, x), with the space before it, is optional, which
// is how ES's default dynamic_date_formats accept "2015/09/02".
func javaPatternParser(pattern string) dateParser {
	type elem struct {
		letter byte
		count  int
		lit    string
	}
	var elems []elem
	for i := 0; i < len(pattern); {
		c := pattern[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(pattern[i+1:], '\'')
			if j < 0 {
				return acceptAny
			}
			elems = append(elems, elem{lit: pattern[i+1 : i+1+j]})
			i += j + 2
		case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
			j := i
			for j < len(pattern) && pattern[j] == c {
				j++
			}
			if !strings.ContainsRune("yuMdHmsSZXx", rune(c)) || (c == 'M' && j-i > 2) || ((c == 'y' || c == 'u') && j-i != 4) {
				return acceptAny
			}
			elems = append(elems, elem{letter: c, count: j - i})
			i = j
		default:
			elems = append(elems, elem{lit: string(c)})
			i++
		}
	}
	optionalFrom := len(elems)
	if n := len(elems); n > 0 && strings.ContainsRune("ZXx", rune(elems[n-1].letter)) {
		optionalFrom = n - 1
		if n > 1 && elems[n-2].lit == " " {
			optionalFrom = n - 2
		}
	}
	return func(s string) (time.Time, bool) {
		year, month, day, hour, minute, sec, nanos := 1970, 1, 1, 0, 0, 0, 0
		loc := time.UTC
		i := 0
		for k, e := range elems {
			if i == len(s) && k >= optionalFrom {
				break
			}
			if e.letter == 0 {
				if !strings.HasPrefix(s[i:], e.lit) {
					return time.Time{}, false
				}
				i += len(e.lit)
				continue
			}
			if strings.ContainsRune("ZXx", rune(e.letter)) {
				z, n, ok := parseOffset(s[i:])
				if !ok {
					return time.Time{}, false
				}
				loc, i = z, i+n
				continue
			}
			j := i
			for j < len(s) && j-i < e.count && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j-i != e.count && !(e.count == 1 && j-i >= 1) {
				return time.Time{}, false
			}
			if e.count == 1 && j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			n, _ := strconv.Atoi(s[i:j])
			switch e.letter {
			case 'y', 'u':
				year = n
			case 'M':
				month = n
			case 'd':
				day = n
			case 'H':
				hour = n
			case 'm':
				minute = n
			case 's':
				sec = n
			case 'S':
				frac := s[i:j] + strings.Repeat("0", max(0, 9-(j-i)))
				nanos, _ = strconv.Atoi(frac[:9])
			}
			i = j
		}
		if i != len(s) {
			return time.Time{}, false
		}
		t := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, loc)
		if t.Year() != year || int(t.Month()) != month || t.Day() != day || t.Hour() != hour || t.Minute() != minute {
			return time.Time{}, false
		}
		return t.UTC(), true
	}
}

func acceptAny(string) (time.Time, bool) { return time.Time{}, true }

// parseDate tries each format of a date field.
func parseDate(s string, spec string) (time.Time, bool) {
	ps, _ := dateFormats(spec)
	for _, p := range ps {
		if t, ok := p(s); ok {
			return t, true
		}
	}
	return time.Time{}, false
}

func (f *fieldMap) dateFormat() string {
	if v, ok := f.params["format"].(string); ok && v != "" {
		return v
	}
	if f.typ == "date_nanos" {
		return defaultDateNanosFormat
	}
	return defaultDateFormat
}

// millis is the sort and compare key of a date.
func millis(t time.Time) float64 {
	return float64(t.Unix())*1000 + float64(t.Nanosecond())/1e6
}
