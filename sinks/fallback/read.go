package fallback

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"eventlistener/event"
)

// BadLine is a line of a fallback file that is not a valid record.
type BadLine struct {
	Line int
	Err  error
	// Truncated says the line is the last one and has no newline: the mark of
	// a write cut short. Replay reports it and goes on.
	Truncated bool
}

// maxLine bounds one record. It is well above the largest request the API
// accepts (--max-body-bytes is at most 64 MiB), so any event it took fits.
const maxLine = 160 << 20

// Read parses a fallback file. Records that parse are returned in order;
// lines that do not are returned as BadLine, so one damaged line never costs
// the rest of the file. err is set only when r itself fails.
func Read(r io.Reader) (records []Record, bad []BadLine, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, rerr := br.ReadSlice('\n')
		if errors.Is(rerr, bufio.ErrBufferFull) {
			// A long line: gather it whole, up to maxLine.
			buf := append([]byte(nil), line...)
			for errors.Is(rerr, bufio.ErrBufferFull) && len(buf) <= maxLine {
				line, rerr = br.ReadSlice('\n')
				buf = append(buf, line...)
			}
			if len(buf) > maxLine {
				return records, bad, fmt.Errorf("line %d is longer than %d bytes", n, maxLine)
			}
			line = buf
		}
		if rerr != nil && rerr != io.EOF {
			return records, bad, rerr
		}
		last := rerr == io.EOF
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 {
			rec, perr := parseRecord(trimmed)
			if perr != nil {
				bad = append(bad, BadLine{Line: n, Err: perr, Truncated: last && !bytes.HasSuffix(line, []byte("\n"))})
			} else {
				records = append(records, rec)
			}
		}
		if last {
			return records, bad, nil
		}
	}
}

// parseRecord reads one record. Its event goes through the envelope decoder
// every source uses, so replay never sends what the API would refuse.
func parseRecord(line []byte) (Record, error) {
	var raw struct {
		Record
		Event json.RawMessage `json:"event"` // shadows Record.Event
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return Record{}, fmt.Errorf("not a fallback record: %w", err)
	}
	rec := raw.Record
	switch {
	case rec.Sink == "":
		return rec, errors.New(`record has no "sink"`)
	case len(raw.Event) == 0 || string(raw.Event) == "null":
		return rec, errors.New(`record has no "event"`)
	}
	dec := event.NewDecoder(event.DecodeOptions{})
	defer dec.Release()
	if err := dec.Document(raw.Event, event.ShapeStored); err != nil {
		return rec, fmt.Errorf("record's event: %w", err)
	}
	rec.Event = dec.Events()[0]
	return rec, nil
}
