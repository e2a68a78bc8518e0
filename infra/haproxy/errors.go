package haproxy

import (
	"errors"
	"strings"
)

// Errors to test for with errors.Is.
var (
	// ErrNotFound: HAProxy knows no such backend or server ("No such
	// server.", "No such backend.", "Can't find backend."). The
	// *CommandError in the chain holds HAProxy's message.
	ErrNotFound = errors.New("haproxy: not found")
	// ErrPermissionDenied: the runtime socket's level does not allow the
	// command ("Permission denied"; admin commands need "level admin").
	ErrPermissionDenied = errors.New("haproxy: permission denied")
	// ErrInvalidArgument: the client refused to send the command, because a
	// name or a state is not one HAProxy accepts.
	ErrInvalidArgument = errors.New("haproxy: invalid argument")
	// ErrNotConfigured: the Client has no address for what was asked.
	ErrNotConfigured = errors.New("haproxy: not configured")
)

// CommandError is a runtime API command that HAProxy answered with an error
// message.
type CommandError struct {
	Command string // the command sent, without the newline
	Message string // HAProxy's reply, trimmed, e.g. "No such server."
}

func (e *CommandError) Error() string {
	return "haproxy: " + e.Command + ": " + e.Message
}

// Is makes errors.Is(err, ErrNotFound) and errors.Is(err,
// ErrPermissionDenied) hold for the matching messages.
func (e *CommandError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return isNotFoundMessage(e.Message)
	case ErrPermissionDenied:
		return strings.Contains(e.Message, "Permission denied")
	}
	return false
}

func isNotFoundMessage(msg string) bool {
	for _, s := range []string{"No such server", "No such backend", "Can't find backend", "No such proxy", "Can't find server"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
