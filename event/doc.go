// Package event defines the Event envelope that every layer of eventlistener
// shares: the HTTP API and the Redis subscriber make events, the buffer batches
// them, and the sinks store them. Field names follow CloudEvents 1.0.
package event
