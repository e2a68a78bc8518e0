// Package fallback is the log of events a store refused or could not take in
// time, and the replay that sends them again. The log is NDJSON, one record
// per event naming the sink it is owed to; each file is written aside and
// renamed when complete, so no reader ever sees half a batch.
package fallback
