package wal

// CutTornTail lets a negative control turn off the cutting of torn tails,
// to prove that the power-cut test catches it.
var CutTornTail = &cutTornTail

// DecodeEvents and AppendEvents expose the payload codec to the fuzzer.
var (
	DecodeEvents = decodeEvents
	AppendEvents = appendEvents
)
