//go:build !jsontext

package event

const useJSONText = false

func (d *Decoder) parseEventJT(ce bool) error { panic("built without -tags jsontext") }
