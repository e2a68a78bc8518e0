// Package actors holds eventlistener's actor system: the Buffer, a
// finite-state machine that gathers events into batches, and the Batcher,
// which writes each batch to every sink with a bounded number in flight and
// sends whatever a sink refused to the fallback log. Engine wires them
// together and is the one entry point producers use.
package actors
