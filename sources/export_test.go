package sources

// PayloadEvent is payloadEvent, for the external tests.
var PayloadEvent = payloadEvent
