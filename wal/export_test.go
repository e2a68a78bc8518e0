package wal

// DecodeEvents and AppendEvents expose the payload codec to the fuzzer;
// AppendRecord lets tests lay out segments by hand.
var (
	DecodeEvents = decodeEvents
	AppendEvents = appendEvents
	AppendRecord = appendRecord
)
