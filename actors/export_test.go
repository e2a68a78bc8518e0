package actors

// MessageToEvent is messageToEvent, for the external tests.
var MessageToEvent = messageToEvent
