// Package wal is eventlistener's write-ahead log: every accepted request is
// appended here and synced before the API answers 202, and the sinks read
// back from it whatever they cannot keep in memory.
//
// The log is a folder of segment files named after the offset of their first
// event. An offset numbers events, not records: a record holds one request's
// events, and its header carries the offset of the first one and the count,
// so the events of the log are numbered without gaps. Each record carries a
// CRC-32C over its header and payload.
//
// Writes are group-committed: one goroutine takes every request queued while
// the previous fdatasync ran, writes them with one write and syncs once, then
// answers them all. A failed sync is never retried (the kernel may have
// dropped the dirty pages, see "fsyncgate"): the log stops taking writes.
//
// Open recovers: a torn or zeroed tail of the newest segment is cut off. A
// record names the write (group) it was part of, so intact records after a
// bad one tell a torn write (same write: never synced, never acknowledged)
// from damage (a later write: the bad one had been synced). Damage, a bad
// record in an older segment (which was complete when it was sealed) and a
// gap between segments are reported, and the bytes moved to the quarantine
// folder, never skipped silently. Segments are sealed on recovery; writing always
// continues in a new one.
//
// The log keeps no record of what the sinks have done with it: the caller
// tracks that in memory and calls Release with the lowest offset any sink
// still needs, and after a restart everything still in the log is delivered
// again (events carry ids, so the stores drop what they already hold).
package wal
