// Package sinks defines the Sink interface that the batcher writes through,
// and the errors a sink returns to say what happened to a batch. The stores
// live in the sub-packages: postgres, elastic, file (the no-setup default) and
// fallback (the log of what a store refused).
package sinks
