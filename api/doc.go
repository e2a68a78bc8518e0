// Package api is the HTTP side of eventlistener: the echo server, its routes, request decoding (JSON, NDJSON, CloudEvents), validation, auth and errors.
package api
